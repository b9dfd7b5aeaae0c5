"""Azure Blob storage polling against the mock's Blob REST API, with the real daemon:
records of several blobs in several containers arrive once (listing pages followed by
NextMarker); a blob that grows between polls, a half-written last line included, gives
every record exactly once; a kill -9 and a restart neither repeat nor skip one; a bad line
is rejected alone; a blob created again is read again without duplicates; 429 is retried;
an expired SAS is a clear error that is not asked again in a hot loop; with two tenants
one failing storage account does not hold back the other, which reads its storage with
the OAuth token of its Microsoft app."""

import copy
import json
import re
import time

from harness import Daemon, check, run_cli, wait_for
import mockctl
from mockctl import MockServer

ACCT = "kagarilogs"
SIGNINS = "insights-logs-signinlogs"
FIREWALL = "insights-logs-azurefirewall"
BLOB1 = ("tenantId=7d3f1b2a-9c4e-4a6b-8e21-5f0c3d9a7b14/y=2026/m=12/d=05/h=01/m=00/PT1H.json")
BLOB2 = ("tenantId=7d3f1b2a-9c4e-4a6b-8e21-5f0c3d9a7b14/y=2026/m=12/d=05/h=02/m=00/PT1H.json")
FWBLOB = ("resourceId=/SUBSCRIPTIONS/0000/RESOURCEGROUPS/NET/PROVIDERS/MICROSOFT.NETWORK/"
          "AZUREFIREWALLS/FW-01/y=2026/m=12/d=05/h=01/m=00/PT1H.json")

# One Entra ID sign-in record as archived by a diagnostic setting (a line of PT1H.json).
SIGNIN = {
    "time": "2026-12-05T01:02:03.0000000Z",
    "resourceId": "/tenants/7d3f1b2a-9c4e-4a6b-8e21-5f0c3d9a7b14/providers/Microsoft.aadiam",
    "operationName": "Sign-in activity", "operationVersion": "1.0", "category": "SignInLogs",
    "tenantId": "7d3f1b2a-9c4e-4a6b-8e21-5f0c3d9a7b14", "resultType": "50126",
    "resultSignature": "None", "durationMs": 0, "callerIpAddress": "203.0.113.50",
    "correlationId": "0e964ff4-30de-5641-b9ae-2e69d5075f73", "identity": "山田 太郎",
    "Level": 4, "location": "JP",
    "properties": {
        "id": "", "createdDateTime": "2026-12-05T01:02:03.0000000+00:00",
        "userDisplayName": "山田 太郎", "userPrincipalName": "taro.yamada@example.jp",
        "userId": "a11ce000-0000-4000-8000-000000000009", "appDisplayName": "Office 365",
        "ipAddress": "203.0.113.50", "clientAppUsed": "Browser",
        "status": {"errorCode": 50126, "failureReason": "Invalid username or password."},
        "conditionalAccessStatus": "notApplied", "isInteractive": True,
        "riskLevelDuringSignIn": "none", "riskState": "none",
    },
}


def signin_line(n, tag="r"):
    rec = copy.deepcopy(SIGNIN)
    rec["properties"]["id"] = "%s-%08d-0000-4000-8000-000000000000" % (tag, n)
    rec["correlationId"] = "c-%s-%d" % (tag, n)
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def firewall_line(n):
    rec = {"time": "2026-12-05T01:%02d:00.000Z" % (n % 60), "category": "AZFWNetworkRule",
           "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/NET/PROVIDERS/"
                         "MICROSOFT.NETWORK/AZUREFIREWALLS/FW-01",
           "operationName": "AZFWNetworkRule",
           "properties": {"Protocol": "TCP", "SourceIp": "10.0.0.%d" % (n % 250 + 1),
                          "SourcePort": 40000 + n, "DestinationIp": "198.51.100.7",
                          "DestinationPort": 443, "Action": "Deny", "Policy": "fw-policy",
                          "RuleCollectionGroup": "rcg", "RuleCollection": "rc",
                          "Rule": "deny-all", "ActionReason": ""}}
    return json.dumps(rec, separators=(",", ":"))


def msum(met, name):
    """The sum of a metric's series (every label)."""
    return sum(v for k, v in met.items() if k == name or k.startswith(name + "{"))


def raws(d, tenant=None):
    """Every stored record's raw text, alerts and events alike."""
    rows = d.query("SELECT raw FROM alerts", tenant=tenant)
    rows += d.query("SELECT raw FROM events", tenant=tenant)
    return [r[0] if isinstance(r[0], str) else r[0].decode() for r in rows]


def no_repeats(d, what):
    """No record was handed to the store twice since the daemon started: the offsets, not
    the deduplication, kept them once."""
    met = d.metrics()
    dups = (met.get("kagari_alerts_duplicate_total", 0) +
            met.get("kagari_events_duplicate_total", 0))
    check(dups == 0, "%s: %d records read again (duplicates)" % (what, dups))


def expect_exactly(d, lines, what, tenant=None, timeout=30):
    """Wait until every line is stored, then check that each is stored once and nothing
    else is."""
    want = sorted(lines)
    wait_for(lambda: len(raws(d, tenant)) >= len(want), timeout,
             "%s: %d records stored" % (what, len(want)))
    time.sleep(0.3)  # anything more would arrive now
    got = sorted(raws(d, tenant))
    check(got == want, "%s: stored %d records, %d distinct, want %d (missing %r, extra %r)" % (
        what, len(got), len(set(got)), len(want),
        [l[:80] for l in set(want) - set(got)][:3], [l[:80] for l in got if got.count(l) > 1][:3]))


def blob_tenant(m, sas=None, containers=(SIGNINS,), every="1s", extra=""):
    conts = ", ".join('"%s"' % c for c in containers)
    auth = ('sas = "%s", ' % sas) if sas else ""
    return ('blob = { account_url = "%s", containers = { %s }, %severy = "%s"%s }'
            % (m.blob_url(ACCT), conts, auth, every, extra))


def ms_block(m, client_id=mockctl.CLIENT_ID, secret=mockctl.CLIENT_SECRET):
    return ('microsoft = { authority = "%s", tenant_id = "%s", client_id = "%s", '
            'client_secret = "%s" }' % (m.base_url, mockctl.TENANT, client_id, secret))


def daemon(name, m, tenants, connectors=""):
    cfg = ('connectors = { ca_file = "%s", max_attempts = 4, timeout = "5s"%s }\n'
           'tenants = { %s }\n' % (m.ca_file, connectors, tenants))
    return Daemon("blob-%s" % name, config_extra=cfg)


def test_blob_containers_pages():
    """Three blobs in two containers, listed one blob per page: every record once."""
    with MockServer() as m:
        m.blob("config", page_size=1)
        sas = m.blob_sas(ACCT)
        lines1 = [signin_line(i, "a") for i in range(5)]
        lines2 = [signin_line(i, "b") for i in range(3)]
        fw = [firewall_line(i) for i in range(4)]
        m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines1) + "\n")
        m.blob_append(ACCT, SIGNINS, BLOB2, "\n".join(lines2) + "\n")
        m.blob_append(ACCT, FIREWALL, FWBLOB, "\r\n".join(fw) + "\r\n")
        d = Daemon("blob-pages", config_extra='connectors = { ca_file = "%s" }' % m.ca_file)
        with d:
            # the SAS as the operator writes it: encrypted with the configuration's key
            enc = run_cli(["secret", "encrypt", "--config", d.config], input=sas + "\n",
                          check_rc=0).stdout.strip()
            check(enc.startswith("enc:v1:"), "encrypted: %r" % enc)
            # not a SAS at all: a clear error at start
            bad = run_cli(["secret", "encrypt", "--config", d.config], input="sv=x&se=y\n",
                          check_rc=0).stdout.strip()
            with open(d.config, "a") as f:
                f.write("\ntenants = { t1 = { %s } }\n"
                        % blob_tenant(m, bad, (SIGNINS, FIREWALL)))
            p = run_cli(["serve", "--config", d.config], check_rc=1, timeout=20)
            check("tenants.t1.blob.sas: not a SAS token" in p.stderr + p.stdout,
                  "the bad SAS named: %r" % (p.stderr + p.stdout)[-300:])
            # the SAS URL as copied from the portal, encrypted with the configuration's key
            enc = run_cli(["secret", "encrypt", "--config", d.config],
                          input="%s?%s\n" % (m.blob_url(ACCT), sas), check_rc=0).stdout.strip()
            with open(d.config, "a") as f:
                f.write("\ntenants = { t1 = { %s } }\n"
                        % blob_tenant(m, enc, (SIGNINS, FIREWALL)))
            d.start()
            expect_exactly(d, lines1 + lines2 + fw, "three blobs")
            st = m.blob_state()
            check(st["lists"] >= 3, "the listing was paged: %r" % st)
            # records are alerts or events by their source's default (no tenant rule)
            check(len(d.query("SELECT 1 FROM events WHERE source = 'azure.firewall'")) == 4,
                  "the firewall flows are events")
            check(len(d.query("SELECT 1 FROM events WHERE source = 'entra.signin'")) == 8,
                  "the failed low-risk sign-ins are events")
            markers = [e for e in m.log_entries(200, "/blob/")
                       if "marker=" in (e.get("query") or "")]
            check(markers, "a request followed a NextMarker")
            check(all("sig=" not in l for l in [d.all_logs()]), "the SAS signature was logged")
            sig = re.search(r"sig=([^&]+)", sas).group(1)
            check(sig not in d.all_logs(), "the SAS signature reached the log")
            # the SAS expires in an hour: said ahead, and watched in the metrics
            check(re.search(r"blob\.sas_expiring tenant=t1 [^\n]*in_hours=1", d.log()),
                  "the coming expiry said")
            left = d.metrics().get("kagari_blob_sas_expiry_seconds", 0)
            check(3000 < left <= 3600, "the expiry gauge: %r" % left)
            marks = d.query("SELECT key, value FROM source_marks WHERE source = 'blob'")
            check(len(marks) == 3, "one mark per blob: %r" % marks)
            for key, value in marks:
                v = json.loads(value)
                check(v["offset"] == v["size"] and v["offset"] > 0, "mark %s: %r" % (key, v))
            met = d.metrics()
            check(met.get('kagari_blob_records_total{container="%s"}' % SIGNINS) == 8 and
                  met.get('kagari_blob_records_total{container="%s"}' % FIREWALL) == 4,
                  "records per container: %r" % met)
            check(msum(met, "kagari_blob_rejected_total") == 0, "nothing rejected")


def test_blob_backlog_in_slices():
    """A backlog of 5,000 lines in one blob, read in one ranged request and stored in
    slices (one commit each, the offset moving with each): every line once."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        fw = [firewall_line(i) for i in range(5000)]
        for k in range(0, 5000, 1000):
            m.blob_append(ACCT, FIREWALL, FWBLOB, "\n".join(fw[k:k + 1000]) + "\n")
        d = daemon("slices", m, "t1 = { %s }" % blob_tenant(m, sas, (FIREWALL,)))
        with d:
            d.start()
            expect_exactly(d, fw, "the backlog", timeout=120)
            reads = [e for e in m.log_entries(200, "/blob/") if e.get("route") == "blob.get"]
            check(len(reads) == 1, "one ranged read of 4 MiB: %d" % len(reads))


def test_blob_many_blobs():
    """A container of 1,200 blobs (looked at 500 per loop pass) whose last ones hold
    records: they arrive, and the empty ones are never read."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        for i in range(1200):
            m.blob_append(ACCT, SIGNINS, "a/%04d/PT1H.json" % i, "")
        lines = [signin_line(i, "z") for i in range(3)]
        for i, line in enumerate(lines):
            m.blob_append(ACCT, SIGNINS, "z/%d/PT1H.json" % i, line + "\n")
        d = daemon("many", m, "t1 = { %s }" % blob_tenant(m, sas))
        with d:
            d.start()
            expect_exactly(d, lines, "the records after 1,200 empty blobs")
            st = m.blob_state()
            check(st["gets"] == 3, "only the blobs with bytes were read: %r" % st["gets"])
            # archived 40 days ago, past blob.max_age (30 days by default): never read
            m.blob("append", account=ACCT, container=SIGNINS, blob="0/old/PT1H.json",
                   data=signin_line(1, "old") + "\n", age=40 * 86400)
            m.blob("append", account=ACCT, container=SIGNINS, blob="0/new/PT1H.json",
                   data=signin_line(1, "new") + "\n", age=20 * 86400)
            expect_exactly(d, lines + [signin_line(1, "new")], "a blob within max_age")
            check(m.blob_state()["gets"] == 4, "the old blob was not read")
            check(d.metrics().get("kagari_blob_too_old_total", 0) >= 1, "passed over, counted")


def test_blob_grows_half_line():
    """A blob appended to between polls, its last line written in two halves: each record
    once, and the half line waits until it is complete."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        lines = [signin_line(i) for i in range(6)]
        m.blob_append(ACCT, SIGNINS, BLOB1, lines[0] + "\n" + lines[1] + "\n" + lines[2][:40])
        # outside the prefix: never read
        m.blob_append(ACCT, SIGNINS, "elsewhere/PT1H.json", signin_line(99, "x") + "\n")
        t1 = (blob_tenant(m, sas, every="1s", extra=', prefix = "tenantId="')
              + ', events = { alerts = { "entra.signin" } }')
        d = daemon("grow", m, "t1 = { %s }" % t1)
        with d:
            d.start()
            expect_exactly(d, lines[:2], "before the half line is complete")
            to = len(lines[0].encode()) + len(lines[1].encode()) + 2
            pat = (r'blob\.stored tenant=t1 container=%s blob="?%s"? from=0 to=%d alerts=2 '
                   r'events=0 duplicates=0' % (SIGNINS, re.escape(BLOB1), to))
            wait_for(lambda: re.search(pat, d.log()), 10, "where the records came from, logged")
            time.sleep(1.5)  # another poll sees the same half line
            check(len(raws(d)) == 2, "the half line was taken: %r" % raws(d))
            m.blob_append(ACCT, SIGNINS, BLOB1, lines[2][40:] + "\n" + lines[3] + "\n")
            expect_exactly(d, lines[:4], "after the half line completed")
            m.blob_append(ACCT, SIGNINS, BLOB1, lines[4] + "\n" + lines[5] + "\n")
            expect_exactly(d, lines, "after another append")
            no_repeats(d, "a growing blob")
            n = d.query("SELECT count(*) FROM alerts WHERE source = 'entra.signin'")[0][0]
            check(n == 6, "the tenant's rule made the sign-ins alerts: %d" % n)
            reads = [e for e in m.log_entries(200, "/blob/") if e.get("route") == "blob.get"]
            check(len(reads) >= 3, "one ranged read per growth: %r" % len(reads))
            check(all("elsewhere" not in e["path"] for e in reads), "a blob outside the prefix")
            lists = [e for e in m.log_entries(200, "/blob/") if e.get("route") == "blob.list"]
            check(lists and all("prefix=tenantId%3D" in e["query"] for e in lists),
                  "the prefix in the listing: %r" % lists[:1])


def test_blob_kill9_resumes():
    """kill -9 after polls, more appended while it is down: after the restart every record
    is stored once, none skipped, none repeated; a small chunk makes reads span lines. The
    same after a kill -9 and after a SIGTERM in the middle of a slow read."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        lines = [signin_line(i) for i in range(40)]
        m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines[:20]) + "\n")
        d = daemon("kill9", m, "t1 = { %s }" % blob_tenant(m, sas, every="1s",
                                                          extra=', chunk = "4KiB"'))
        with d:
            d.start()
            expect_exactly(d, lines[:20], "before the kill")
            d.kill9()
            m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines[20:30]) + "\n" + lines[30][:17])
            d.start()
            expect_exactly(d, lines[:30], "after the restart")
            no_repeats(d, "after the restart")
            m.blob_append(ACCT, SIGNINS, BLOB1, lines[30][17:] + "\n" + "\n".join(lines[31:]) + "\n")
            expect_exactly(d, lines, "after more appends")
            # killed while reading: a slow storage account, killed in the middle
            more = [signin_line(i, "k") for i in range(40)]
            m.delay("/blob/", 300)
            m.blob_append(ACCT, SIGNINS, BLOB2, "\n".join(more) + "\n")

            def stored_k():
                return sum(1 for r in raws(d) if '"c-k-' in r)
            wait_for(lambda: stored_k() >= 4, 20, "the slow reading under way")
            n = stored_k()
            check(n < 40, "killed in the middle: %d of 40 stored" % n)
            d.kill9()
            m.delay("/blob/", 0)
            d.start()
            expect_exactly(d, lines + more, "after a kill in the middle of reading")
            no_repeats(d, "after a kill in the middle of reading")
            # stopped (SIGTERM) in the middle of a slow read: a clean exit, then resumed
            last = [signin_line(i, "s") for i in range(40)]
            m.delay("/blob/", 300)
            m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(last) + "\n")
            wait_for(lambda: sum(1 for r in raws(d) if '"c-s-' in r) >= 4, 20,
                     "the slow reading under way again")
            d.stop()
            m.delay("/blob/", 0)
            d.start()
            expect_exactly(d, lines + more + last, "after a stop in the middle of reading")
            no_repeats(d, "after a stop in the middle of reading")


def test_blob_bad_lines_and_replaced():
    """Bad lines are rejected alone with a reason and counted; a blob created again (new
    Creation-Time) is read from its start without storing its old records twice."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        good = [signin_line(i) for i in range(4)]
        bad = [b'{"time": "2026-12-05T01:00:00Z", "category": ', b"not json at all",
               b'{"category":"SignInLogs","properties":{"status":"x"}} trailing', b"\x00{}",
               b'{"category":"SignInLogs","x":"\xff\xfe not UTF-8"}']
        g = [x.encode() for x in good]
        body = b"\n".join([g[0], bad[0], g[1], bad[1], bad[2], g[2], bad[3], bad[4]]) + b"\n"
        m.blob_append(ACCT, SIGNINS, BLOB1, body)
        d = daemon("bad", m, "t1 = { %s }" % blob_tenant(m, sas, every="1s"))
        with d:
            d.start()
            expect_exactly(d, good[:3], "good lines among bad ones")
            wait_for(lambda: d.metrics().get(
                'kagari_blob_rejected_total{container="%s"}' % SIGNINS, 0) == 5, 10,
                "five lines rejected, counted for their container")
            rej = re.findall(r"blob\.rejected [^\n]*", d.log())
            check(len(rej) == 5 and all("reason=" in r for r in rej), "rejections: %r" % rej)
            m.blob("put", account=ACCT, container=SIGNINS, blob=BLOB1,
                   data=good[0] + "\n" + good[3] + "\n")
            expect_exactly(d, good, "after the blob was created again")
            wait_for(lambda: "blob.replaced" in d.log(), 10, "the replacement logged")
            check(d.metrics().get("kagari_blob_replaced_total", 0) >= 1, "replaced metric")


def test_blob_missing_long_rewritten():
    """A container that does not exist yet is said once and the others are still read; a
    line longer than a chunk is rejected alone (the next lines still arrive, across a
    restart too); a blob written again in place (same size, new Etag) is read again."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        good = [signin_line(i) for i in range(4)]
        huge = json.dumps({"category": "SignInLogs", "pad": "x" * 10000})
        m.blob_append(ACCT, SIGNINS, BLOB1, good[0] + "\n" + huge[:6000])
        d = daemon("missing", m, "t1 = { %s }" % blob_tenant(
            m, sas, ("insights-logs-notyet", SIGNINS), extra=', chunk = "4KiB"'))
        with d:
            d.start()
            expect_exactly(d, good[:1], "the first line")
            time.sleep(2.5)  # a few polls
            check(d.log().count("blob.container_missing") == 1,
                  "the missing container said once: %d" % d.log().count("container_missing"))
            d.kill9()
            m.blob_append(ACCT, SIGNINS, BLOB1, huge[6000:] + "\n" + good[1] + "\n")
            d.start()
            expect_exactly(d, good[:2], "after the long line")
            wait_for(lambda: "longer than blob.chunk" in d.all_logs(), 10, "the long line said")
            check(d.all_logs().count("blob.rejected") == 1, "one line rejected, once")
            size = m.blob_state()["containers"][0]["blobs"][BLOB1]
            x = [signin_line(i, "w") for i in range(2)]
            body = x[0] + "\n" + x[1] + "\n"
            body += " " * (size - len(body.encode()) - 1) + "\n"
            check(len(body.encode()) == size, "same size")
            m.blob("rewrite", account=ACCT, container=SIGNINS, blob=BLOB1, data=body)
            expect_exactly(d, good[:2] + x, "after the rewrite")
            check("blob.rewritten" in d.log(), "the rewrite logged")
            # shorter than the offset: read from the start again
            y = signin_line(0, "s")
            m.blob("rewrite", account=ACCT, container=SIGNINS, blob=BLOB1, data=y + "\n")
            expect_exactly(d, good[:2] + x + [y], "after the blob shrank")
            check("blob.shrunk" in d.log(), "the shrinking logged")


def test_blob_throttled():
    """429 with Retry-After and 503 on the storage account: waited out, then read."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        lines = [signin_line(i) for i in range(3)]
        m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines) + "\n")
        m.fault("/blob/%s/%s" % (ACCT, SIGNINS), status=429, retry_after=1, count=2)
        m.fault("/blob/%s/%s/" % (ACCT, SIGNINS), status=503, retry_after=1, count=1)
        d = daemon("429", m, "t1 = { %s }" % blob_tenant(m, sas, every="1s"))
        with d:
            d.start()
            expect_exactly(d, lines, "after throttling")
            log = d.log()
            check(log.count("call.retry") >= 2 and "status=429" in log, "retries logged")
            ent = m.log_entries(100, "/blob/")
            t429 = [e for e in ent if e["status"] == 429]
            check(len(t429) == 2, "two 429 answers: %r" % t429)
            # throttled past connectors.max_attempts (4): the poll fails, the next one reads
            extra = signin_line(7)
            m.blob_append(ACCT, SIGNINS, BLOB1, extra + "\n")
            m.fault("/blob/%s/" % ACCT, status=429, retry_after=0, count=6)
            expect_exactly(d, lines + [extra], "after a poll given up to throttling")
            check(re.search(r"blob\.poll_failed tenant=t1 [^\n]*status=429", d.log()),
                  "the throttled poll logged with its status")
            check(d.metrics().get("kagari_blob_throttled_total", 0) >= 1, "throttled metric")


def test_blob_expired_sas():
    """An expired SAS: a clear error in the log and the metrics, nothing stored, and the
    account is asked again only after a growing wait."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT, expires_in=-60)
        m.blob_append(ACCT, SIGNINS, BLOB1, signin_line(1) + "\n")
        # t2 has neither a SAS nor a Microsoft app: nothing to authenticate with
        d = daemon("expired", m, "t1 = { %s }, t2 = { %s }"
                   % (blob_tenant(m, sas, every="1s"), blob_tenant(m, None, every="1s")))
        d.add_tenant("t2")
        with d:
            d.start()
            wait_for(lambda: re.search(r"blob\.poll_failed tenant=t2 [^\n]*no sas and no "
                                       r"Microsoft app", d.log()), 10, "t2's missing credentials")
            wait_for(lambda: "blob.auth_failed" in d.log(), 10, "the auth failure logged")
            line = re.search(r"blob\.auth_failed [^\n]*", d.log()).group(0)
            check("status=403" in line and "AuthenticationFailed" in line and "expired" in line,
                  "the error says what is wrong: %s" % line)
            sig = re.search(r"sig=([^&]+)", sas).group(1)
            check(sig not in d.all_logs(), "the SAS signature reached the log")
            time.sleep(6)
            n = m.blob_state()["auth_failed"]
            # polls at 0, then waits of 1, 2, 4 s: at most 4 requests in ~7 s
            check(1 <= n <= 4, "no hot loop: %d refused requests" % n)
            met = d.metrics()
            check(met.get("kagari_blob_auth_failures_total", 0) >= 1, "auth metric: %r" % met)
            check(met.get("kagari_blob_tenants_failing", 0) == 2, "failing gauge")
            check(met.get("kagari_blob_sas_expiry_seconds", 0) < 0, "the expired SAS's gauge")
            check("blob.sas_expired tenant=t1" in d.log(), "the expired SAS said as such")
            check(d.log().count("blob.poll_failed tenant=t2") <= 4,
                  "t2 waits longer after each failure")
            check(raws(d) == [], "nothing stored")


def test_blob_two_tenants_one_failing():
    """t1's storage account fails every request (500); t2's arrives meanwhile, read with
    the OAuth token of t2's Microsoft app (no SAS)."""
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        lines = [signin_line(i, "t2") for i in range(5)]
        m.blob_append("other", SIGNINS, BLOB1, "\n".join(lines) + "\n")
        m.blob_append(ACCT, SIGNINS, BLOB1, signin_line(1, "t1") + "\n")
        m.fault("/blob/%s/" % ACCT, status=500, count=1000)
        m.delay("/blob/%s/" % ACCT, 200)
        t2 = ('blob = { account_url = "%s", containers = { "%s" }, every = "1s" }, %s'
              % (m.blob_url("other"), SIGNINS, ms_block(m)))
        d = daemon("two", m, "t1 = { %s }, t2 = { %s }" % (blob_tenant(m, sas), t2))
        d.add_tenant("t2")
        with d:
            d.start()
            expect_exactly(d, lines, "t2's records", tenant="t2")
            wait_for(lambda: "blob.poll_failed tenant=t1" in d.log(), 20, "t1's failure logged")
            check(raws(d) == [], "t1 stored nothing")
            got = [e for e in m.log_entries(300, "/blob/other/")]
            check(got and all(e["status"] in (200, 206) for e in got),
                  "t2's requests answered: %r" % got[:3])
            # its token expires: a 401, a new token, and on
            m.expire_tokens()
            m.blob_append("other", SIGNINS, BLOB1, signin_line(9, "t2") + "\n")
            expect_exactly(d, lines + [signin_line(9, "t2")], "t2 keeps going", tenant="t2")
            check(any(e["status"] == 401 for e in m.log_entries(300, "/blob/other/")),
                  "the expired token was refused")
            scopes = m.counters()["tokens"]["by_client_scope"]
            check(any("https://storage.azure.com/.default" in k and v >= 2
                      for k, v in scopes.items()), "storage tokens asked for: %r" % scopes)


def test_blob_reload():
    """A reload applies the blob poll's interval at once (an hour made one second), stops
    a tenant whose blob block was removed after its poll in progress, and starts it again
    from its stored offsets when the block comes back: every record exactly once."""
    import signal
    with MockServer() as m:
        sas = m.blob_sas(ACCT)
        lines = [signin_line(i, "rl") for i in range(9)]
        m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines[:3]) + "\n")
        slow = blob_tenant(m, sas, every="1h")
        d = daemon("reload", m, "t1 = { %s }" % slow)

        def rewrite(old, new):
            with open(d.config) as f:
                text = f.read()
            check(old in text, "the blob block is not in the file")
            with open(d.config, "w") as f:
                f.write(text.replace(old, new))

        with d:
            d.start()
            expect_exactly(d, lines[:3], "the first poll")
            m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines[3:6]) + "\n")
            time.sleep(1.5)
            check(len(raws(d)) == 3, "polled again before the hour")
            fast = blob_tenant(m, sas, every="1s")
            rewrite(slow, fast)
            t0 = time.time()
            out = d.cli("reload").stdout
            check("reloaded" in out, "kagari reload: %r" % out)
            expect_exactly(d, lines[:6], "after the reload", timeout=10)
            check(time.time() - t0 < 8, "the new interval did not apply at once")
            check("blob.interval tenant=t1 every_s=1 was_s=3600" in d.log(), "not logged")
            # The block removed: the tenant stops polling.
            rewrite("t1 = { %s }" % fast, "t1 = { }")
            d.signal(signal.SIGHUP)
            wait_for(lambda: "blob.stopped tenant=t1" in d.log(), 10, "the poll stopped")
            lists = m.blob_state()["lists"]
            m.blob_append(ACCT, SIGNINS, BLOB1, "\n".join(lines[6:]) + "\n")
            time.sleep(3)
            check(m.blob_state()["lists"] == lists, "a stopped tenant listed its containers")
            check(len(raws(d)) == 6, "a stopped tenant stored records")
            # Back again: it goes on from its offsets.
            rewrite("t1 = { }", "t1 = { %s }" % fast)
            d.signal(signal.SIGHUP)
            expect_exactly(d, lines, "after the block came back", timeout=10)
            no_repeats(d, "a reloaded poller")
            d.stop()


test_blob_reload.TIMEOUT = 90
