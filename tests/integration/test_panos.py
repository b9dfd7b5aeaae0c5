"""The panos connector against kagari-mock's PAN-OS XML API: User-ID blocks (batched
across runs, idempotent, reconciled after kill -9), address objects and groups, commits
polled as a parked effect (failures, a held lock, a commit already running), the checks
and escaping of every value, the guardrails, a rejected key, throttling, dry run."""

import json
import time

from connhelp import PRELUDE, effects, lua_str, outputs
from harness import Daemon, TestFailure, check, expect_accepted, playbook, wait_for
import mockctl
from mockctl import PANOS_KEY, MockServer


class PanosEnv:
    """A mock and a daemon whose tenant t1 has a panos block pointing at it."""

    def __init__(self, name, body, key=PANOS_KEY, dry_run=False, extra="", max_attempts=3,
                 run_timeout=None, mock_kw=None, files=None, timeout="10s", tls=False,
                 config_tail=""):
        self.name, self.body, self.key = name, body, key
        self.config_tail = config_tail  # more of the configuration (a syslog block)
        self.dry_run, self.extra, self.max_attempts = dry_run, extra, max_attempts
        self.run_timeout = run_timeout
        self.mock_kw = mock_kw or {}
        self.files = files or {}
        self.timeout = timeout
        self.tls = tls
        self.cert = None
        self.m = self.d = None
        self.seq = 0

    def __enter__(self):
        self.m = MockServer(**self.mock_kw)
        self.m.__enter__()
        try:
            block = "panos = { url = %s, api_key = %s, commit_poll = 0.1, %s }" % (
                lua_str(self.m.base_url), lua_str(self.key), self.extra)
            cfg = ("connectors = { ca_file = %s, max_attempts = %d, timeout = %s }\n"
                   "tenants = { t1 = { dry_run = %s, %s } }\n"
                   % (lua_str(self.m.ca_file), self.max_attempts, lua_str(self.timeout),
                      "true" if self.dry_run else "false", block))
            if self.run_timeout:
                cfg += "runs = { timeout = %s }\n" % lua_str(self.run_timeout)
            cfg += self.config_tail
            self.d = Daemon("panos-%s" % self.name, config_extra=cfg)
            if self.tls:
                from test_tls import make_cert
                self.cert, key = make_cert(self.d.dir)
                with open(self.d.config, "a") as f:
                    f.write('\nintake = { listen = "127.0.0.1:0", tls = { cert = "%s", '
                            'key = "%s" } }\n' % (self.cert, key))
            self.d.write_playbook("fw.lua", playbook("fw", "it.panos", PRELUDE + self.body))
            for name, text in self.files.items():
                self.d.write_playbook(name, text)
            self.d.start()
        except BaseException:
            self.__exit__(TestFailure, None, None)
            raise
        return self

    def __exit__(self, etype, exc, tb):
        try:
            if self.d is not None:
                if etype is None and self.d.proc is not None:
                    self.d.stop()
                self.d.__exit__(etype, None, None)
        finally:
            self.m.__exit__(etype, None, None)
        return False

    def post(self, raw=None):
        self.seq += 1
        a = {"source": "it.panos", "source_id": "panos-%s-%d" % (self.name, self.seq)}
        a.update(raw or {})
        return expect_accepted(self.d.post(a), 1)[0]

    def result(self, alert_id, state="done", timeout=30):
        run = self.d.wait_run_final(alert_id, timeout=timeout)
        journal = self.d.run_show(run["id"])["journal"]
        check(state is None or run["state"] == state,
              "run is %s (%s), expected %s; journal %s"
              % (run["state"], run.get("error"), state, json.dumps(journal)[:3000]))
        return outputs(journal), run, journal

    def fire(self, raw=None, state="done", timeout=30):
        return self.result(self.post(raw), state, timeout)

    def api_requests(self, route=None):
        entries = self.m.log_entries(2048, "/api")
        return [e for e in entries if route is None or e["route"] == route]


def tags_of(m, ip):
    for e in m.registered_ips():
        if e["ip"] == ip:
            return {t["name"]: t for t in e["tags"]}
    return {}


BLOCK_CYCLE = """
    rec("block", panos.block_ip(alert.raw.ip, { timeout = 600 }))
    rec("again", panos.block_ip(alert.raw.ip, { timeout = 600 }))
    rec("list", panos.blocked{})
    rec("other", panos.block_ip(alert.raw.ip, { tag = "watch list" }))
    rec("unblock", panos.unblock_ip(alert.raw.ip))
    rec("unblock2", panos.unblock_ip(alert.raw.ip))
    rec("after", panos.blocked{ tag = "*" })
"""


def test_panos_block_list_unblock():
    """block_ip registers the tenant's tag with the firewall's own timeout (one User-ID
    message, the key in X-PAN-KEY); blocking again is success ("already_registered");
    blocked{} lists it; unblock_ip removes only that tag, and again is success; each call
    is its own journaled effect with its canonical request."""
    with PanosEnv("cycle", BLOCK_CYCLE, extra='tag = "soar-block"') as env:
        out, run, journal = env.fire({"ip": "203.0.113.9"})
        check(out["block"]["ok"] and out["block"]["v"] == {
            "ip": "203.0.113.9", "tag": "soar-block", "timeout": 600, "status": "registered"},
            "block %r" % out["block"])
        check(out["again"]["v"]["status"] == "already_registered", "again %r" % out["again"])
        check(out["list"]["v"] == [{"ip": "203.0.113.9", "tags": ["soar-block"]}],
              "list %r" % out["list"])
        check(out["unblock"]["v"]["status"] == "unregistered", "unblock %r" % out["unblock"])
        check(out["unblock2"]["v"]["status"] == "not_registered", "%r" % out["unblock2"])
        check(out["after"]["v"] == [{"ip": "203.0.113.9", "tags": ["watch list"]}],
              "after %r" % out["after"])
        tags = tags_of(env.m, "203.0.113.9")
        check(list(tags) == ["watch list"], "mock state %r" % tags)
        blocks = effects(journal, "panos.block_ip")
        check(len(blocks) == 3 and blocks[0]["request"] == {
            "ip": "203.0.113.9", "tag": "soar-block", "timeout": 600}, "journal %r" % blocks)
        c = env.m.counters()["panos"]
        check(c["registered"] == 2 and c["register_exists"] == 1 and c["unregistered"] == 1
              and c["unregister_missing"] == 1, "counters %r" % c)


def test_panos_block_timeout_expires():
    """The firewall's own timeout: a block with timeout = 1 is gone from the firewall
    (and from blocked{}) after a second, with no call from the engine."""
    body = """
    rec("block", panos.block_ip(alert.raw.ip, { timeout = 1 }))
    sleep(1.5)
    rec("list", panos.blocked{})
"""
    with PanosEnv("expire", body) as env:
        out, _, _ = env.fire({"ip": "2001:DB8::1"})
        check(out["block"]["v"]["ip"] == "2001:db8::1", "canonical %r" % out["block"])
        check(out["list"]["v"] == [], "expired %r" % out["list"])
        check(env.m.counters()["panos"]["expired"] == 1, "mock expired")


def test_panos_blocks_of_many_runs_share_a_message():
    """30 runs blocking 25 addresses within the batch window go out in a few uid-messages,
    not 30; every run still journals and gets its own answer; two runs blocking the same
    address share its entry."""
    body = 'rec("block", panos.block_ip(alert.raw.ip))\n'
    with PanosEnv("batch", body, extra="batch_window = 0.5") as env:
        ips = ["198.51.100.%d" % i for i in range(1, 26)] + ["198.51.100.%d" % i
                                                               for i in range(1, 6)]
        ids = [env.post({"ip": ip}) for ip in ips]
        for aid, ip in zip(ids, ips):
            out, _, journal = env.result(aid)
            check(out["block"]["ok"] and out["block"]["v"]["ip"] == ip, "%s: %r" % (ip, out))
            check(len(effects(journal, "panos.block_ip")) == 1, "journal %r" % journal)
        uid = env.api_requests("panos.user-id")
        check(1 <= len(uid) <= 5, "%d uid-messages for 30 blocks" % len(uid))
        c = env.m.counters()["panos"]
        check(c["registered"] == 25, "counters %r" % c)
        check(len(env.m.registered_ips()) == 25, "mock state")
        log = env.d.log()
        check("panos.batch" in log, "no batch log line")
        mx = env.d.metrics()
        check(mx.get("kagari_panos_uid_messages_total") == len(uid)
              and mx.get("kagari_panos_uid_entries_total") == 25, "metrics %r"
              % {k: v for k, v in mx.items() if "panos" in k})


def test_panos_block_then_unblock_in_one_window_keep_order():
    """A block and an unblock of one address by two runs in the same batch window go out
    in two messages, in the order asked (the firewall would apply an unregister before a
    register of one message); other addresses still share the first message."""
    body = """
    if alert.raw.op == "block" then
      rec("r", panos.block_ip(alert.raw.ip))
    else
      rec("r", panos.unblock_ip(alert.raw.ip))
    end
"""
    with PanosEnv("order", body, extra="batch_window = 0.5") as env:
        ids = [env.post({"op": "block", "ip": "203.0.113.5"}),
               env.post({"op": "unblock", "ip": "203.0.113.5"}),
               env.post({"op": "block", "ip": "203.0.113.6"})]
        outs = [env.result(i)[0]["r"] for i in ids]
        check(outs[0]["v"]["status"] == "registered" and outs[1]["v"]["status"] ==
              "unregistered" and outs[2]["v"]["status"] == "registered", "%r" % outs)
        check([e["ip"] for e in env.m.registered_ips()] == ["203.0.113.6"], "mock state")
        check(len(env.api_requests("panos.user-id")) == 2, "messages %r"
              % env.api_requests("panos.user-id"))


HOSTILE = """
    for i, v in ipairs(alert.raw.badip) do
      try("ip" .. i, panos.block_ip, v)
      try("net" .. i, panos.add_address, "ok-name", v)
    end
    for i, v in ipairs(alert.raw.bad) do
      try("unip" .. i, panos.unblock_ip, "192.0.2.1", { tag = v })
      try("tag" .. i, panos.block_ip, "192.0.2.1", { tag = v })
      try("name" .. i, panos.add_address, v, "192.0.2.1")
      try("grp" .. i, panos.add_to_group, v, "ok-name")
      try("mem" .. i, panos.add_to_group, "ok-group", v)
      try("del" .. i, panos.delete_address, v)
      try("btag" .. i, panos.blocked, { tag = v })
    end
    try("nul", panos.block_ip, "192.0.2.1\\0")
    try("nulname", panos.add_address, "a\\0b", "192.0.2.1")
    try("ctl", panos.add_address, "ok-name", "192.0.2.1", { description = "a\\1b" })
    try("num", panos.block_ip, 3232235777)
    try("tbl", panos.block_ip, {})
    try("opt", panos.block_ip, "192.0.2.1", { tags = "x" })
    try("tmo", panos.block_ip, "192.0.2.1", { timeout = 2592001 })
    try("neg", panos.block_ip, "192.0.2.1", { timeout = -1 })
    try("frac", panos.block_ip, "192.0.2.1", { timeout = 1.5 })
    try("host", panos.block_ip, "10.1.2.3/8")
    try("long", panos.block_ip, string.rep("1", 100000))
    try("longtag", panos.block_ip, "192.0.2.1", { tag = string.rep("a", 128) })
    try("longname", panos.add_address, string.rep("a", 64), "192.0.2.1")
"""

# Not a tag, not an object name, not an address: they could change the structure of a
# request document or an xpath, or are simply not of the type.
HOSTILE_VALUES = [
    "' or '1'='1", "a'b", 'a"b', "<x>", "a>b", "a]b", "x']/../entry[@name='y",
    "a/b", "a&b", "&amp;", "a b ", " a", "", "a\tb", "a\nb", "\u00e9t\u00e9",
    "192.0.2.1\" persistent=\"1", "192.0.2.1<", "192.0.2.1]", "192.0.2.1/", "a\rb",
    "x" * 300, "a;b", "a|b", "a=b", "a%27b", "a\u2028b",
]
# Not an address or a subnet (some are fine tags or names).
HOSTILE_ADDRESSES = HOSTILE_VALUES + [
    "1.2.3.4/33", "1.2.3", "::1::", "192.0.2.1,192.0.2.2", "192.0.2.1 ", "0x7f.0.0.1",
    "192.0.2.1-192.0.2.9", "fw.example.jp", "1.2.3.4/8", "2001:db8::/129", "1.2.3.04",
    "1.2.3.4/", "/24", "1.2.3.4//24", "1.2.3.4/+8", "1" * 70,
]


def test_panos_hostile_values_refused_before_journal():
    """Every value that goes into the request document or an xpath is checked for its
    type: quotes, angle brackets, ']', '/', '&', white space, NUL, control characters,
    non-ASCII, over-long values, wrong types and unknown options all raise in the
    playbook, before anything is journaled or sent."""
    with PanosEnv("hostile", HOSTILE) as env:
        out, run, journal = env.fire({"bad": HOSTILE_VALUES, "badip": HOSTILE_ADDRESSES})
        n = 0
        for key, v in out.items():
            check(v["ok"] is False and v["e"], "%s was not refused: %r" % (key, v))
            n += 1
        check(n == 7 * len(HOSTILE_VALUES) + 2 * len(HOSTILE_ADDRESSES) + 13, "%d outputs" % n)
        check(effects(journal) == [], "journaled: %r" % effects(journal))
        check(env.api_requests() == [], "sent: %r" % env.api_requests())
        check("refused before anything was sent" in out["ip1"]["e"], out["ip1"]["e"])


GUARD = """
    rec("own", panos.block_ip("10.20.30.40"))
    rec("net", panos.block_ip("10.0.0.0/7"))
    rec("dns", panos.block_ip("192.0.2.53"))
    rec("fw", panos.block_ip("127.0.0.1"))
    for i = 1, 4 do rec("b" .. i, panos.block_ip("203.0.113." .. i)) end
    rec("unblock", panos.unblock_ip("10.20.30.40"))
"""


def test_panos_guardrails():
    """never_block ranges, DNS servers and the firewall's own address (from its URL) are
    refused with a message naming the range, as is a block past max_blocks_per_hour; the
    refusals are journaled as failed effects and nothing reaches the firewall. Unblocking
    a guarded address is allowed (it undoes nothing harmful)."""
    extra = 'never_block = { "10.0.0.0/8", "192.0.2.53" }, max_blocks_per_hour = 3'
    with PanosEnv("guard", GUARD, extra=extra) as env:
        out, run, journal = env.fire()
        check("never blocked" in out["own"]["e"] and "10.0.0.0/8" in out["own"]["e"],
              "%r" % out["own"])
        check("never blocked" in out["net"]["e"], "%r" % out["net"])
        check("192.0.2.53" in out["dns"]["e"], "%r" % out["dns"])
        check("never blocked" in out["fw"]["e"], "%r" % out["fw"])
        for i in (1, 2, 3):
            check(out["b%d" % i]["ok"], "b%d %r" % (i, out["b%d" % i]))
        check("max_blocks_per_hour" in out["b4"]["e"], "%r" % out["b4"])
        check(out["unblock"]["ok"], "%r" % out["unblock"])
        ips = sorted(e["ip"] for e in env.m.registered_ips())
        check(ips == ["203.0.113.1", "203.0.113.2", "203.0.113.3"], "mock %r" % ips)
        failed = [e for e in effects(journal, "panos.block_ip") if e["status"] == "failed"]
        check(len(failed) == 5, "journal %r" % effects(journal))
        mx = env.d.metrics()
        check(mx.get('kagari_panos_blocks_total{result="refused"}') == 5
              and mx.get('kagari_panos_blocks_total{result="registered"}') == 3, "metrics")


def test_panos_hourly_limit_survives_restart():
    """max_blocks_per_hour counts the blocks of the last hour from the tenant database:
    after a restart the blocks made before it still count, and a block past the limit is
    refused; already-registered addresses do not count again."""
    body = 'rec("b", panos.block_ip(alert.raw.ip))\n'
    with PanosEnv("hourly", body, extra="max_blocks_per_hour = 2") as env:
        for ip in ("203.0.113.1", "203.0.113.2"):
            out, _, _ = env.fire({"ip": ip})
            check(out["b"]["ok"], "%s %r" % (ip, out))
        env.d.stop()
        env.d.start()
        out, _, _ = env.fire({"ip": "203.0.113.3"})
        check(not out["b"]["ok"] and "max_blocks_per_hour" in out["b"]["e"], "%r" % out)
        check(len(env.m.registered_ips()) == 2, "mock %r" % env.m.registered_ips())
        with env.d.client() as c:
            r = c.request("GET", "/edl/t1/blocks-last-hour")
            check(r.status == 401, "the hour's list is not served: %r" % r)


def test_panos_rejected_key():
    """A key the firewall rejects (HTTP 403 Invalid Credential) fails the call with a
    message that says so and what to do."""
    with PanosEnv("badkey", 'rec("block", panos.block_ip("203.0.113.7"))\n'
                  'rec("list", panos.blocked{})\n', key="LUFRPT1-not-the-key==") as env:
        out, _, _ = env.fire()
        for k in ("block", "list"):
            check(not out[k]["ok"] and "rejected the API key" in out[k]["e"]
                  and "Invalid Credential" in out[k]["e"] and "keygen" in out[k]["e"],
                  "%s %r" % (k, out[k]))
        check(env.m.registered_ips() == [], "registered with a bad key")


def test_panos_throttled_and_server_errors_retried():
    """503 with Retry-After and a dropped connection are retried (the uid-message is
    idempotent), then the block succeeds; a persistent error fails every run in the
    batch with the firewall's message."""
    body = 'rec("block", panos.block_ip(alert.raw.ip))\n'
    with PanosEnv("retry", body, max_attempts=4) as env:
        env.m.fault("/api/", status=503, retry_after=1, count=1)
        env.m.fault("/api/", drop=True, count=1)
        out, _, _ = env.fire({"ip": "203.0.113.20"})
        check(out["block"]["ok"], "%r" % out["block"])
        check("203.0.113.20" in [e["ip"] for e in env.m.registered_ips()], "not registered")
        env.m.fault("/api/", status=500, count=10)
        out, _, _ = env.fire({"ip": "203.0.113.21"})
        check(not out["block"]["ok"] and "HTTP 500" in out["block"]["e"]
              and out["block"]["e"].startswith("panos.block_ip"), "%r" % out["block"])
        env.m.clear_faults()


def test_panos_timeouts():
    """A firewall that answers too late: every attempt times out and the run gets the
    timeout as its block_ip's error (the message is not lost, the run goes on). The
    firewall did carry the register out meanwhile: the next block of that address is
    success without a second mapping (already_registered)."""
    body = 'rec("block", panos.block_ip(alert.raw.ip))\n'
    with PanosEnv("timeout", body, max_attempts=2, timeout="1s") as env:
        env.m.delay("/api/", 2500)
        out, _, _ = env.fire({"ip": "203.0.113.80"})
        check(not out["block"]["ok"] and "panos.block_ip" in out["block"]["e"]
              and "timed out" in out["block"]["e"], "%r" % out["block"])
        env.m.delay("/api/", 0)
        out, _, _ = env.fire({"ip": "203.0.113.80"})
        check(out["block"]["ok"] and out["block"]["v"]["status"] == "already_registered",
              "%r" % out["block"])
        check(env.m.counters()["panos"]["registered"] == 1, "registered twice")


def test_panos_dry_run():
    """In a dry run every panos effect is recorded, none sent."""
    body = ('rec("block", panos.block_ip("203.0.113.30"))\n'
            'rec("addr", panos.add_address("h-1", "203.0.113.30"))\n'
            'rec("commit", panos.commit())\n')
    with PanosEnv("dry", body, dry_run=True) as env:
        out, _, journal = env.fire()
        check(all(out[k]["ok"] for k in ("block", "addr", "commit")), "%r" % out)
        check(env.api_requests() == [], "sent in a dry run")
        check(len(effects(journal)) == 3, "journal %r" % journal)


OBJECTS = """
    rec("addr", panos.add_address("kagari-203.0.113.40", alert.raw.ip,
                                  { description = "case <42> & 'x'", tags = { "kagari" } }))
    rec("again", panos.add_address("kagari-203.0.113.40", alert.raw.ip))
    rec("group", panos.add_to_group("kagari-block", "kagari-203.0.113.40"))
    rec("commit", panos.commit{ description = "kagari run " .. alert.raw.case })
    rec("nothing", panos.commit())
    rec("inuse", panos.delete_address("kagari-203.0.113.40"))
    rec("gone", panos.delete_address("never-made"))
"""


def test_panos_address_group_commit():
    """add_address (the description with XML specials escaped, set merges so a repeat is
    harmless), add_to_group, then commit: the run parks while the job is polled until it
    finishes; a commit with nothing to commit is success without a job; deleting an
    address a group uses fails with the firewall's code 10 message; deleting one that
    does not exist is success."""
    with PanosEnv("objects", OBJECTS, mock_kw={"poll_steps": 3}) as env:
        out, run, journal = env.fire({"ip": "203.0.113.40", "case": "2025-0612"})
        for k in ("addr", "again", "group", "commit", "nothing", "gone"):
            check(out[k]["ok"], "%s %r" % (k, out[k]))
        check(out["commit"]["v"]["result"] == "OK" and out["commit"]["v"]["job"] == "4711",
              "commit %r" % out["commit"])
        check("job" not in out["nothing"]["v"] and out["nothing"]["v"]["result"] == "OK",
              "nothing %r" % out["nothing"])
        check(not out["inuse"]["ok"] and "code 10" in out["inuse"]["e"]
              and "referenced" in out["inuse"]["e"], "inuse %r" % out["inuse"])
        st = env.m.panos_state()
        check(st["addresses"] == [{"name": "kagari-203.0.113.40", "ip-netmask": "203.0.113.40",
                                   "description": "case <42> & 'x'", "tags": ["kagari"]}],
              "addresses %r" % st["addresses"])
        check(st["groups"] == [{"name": "kagari-block", "static": ["kagari-203.0.113.40"]}],
              "groups %r" % st["groups"])
        check(st["counters"]["jobs_ok"] == 1 and st["counters"]["job_polls"] >= 3,
              "counters %r" % st["counters"])
        commits = effects(journal, "panos.commit")
        check(len(commits) == 2 and commits[0]["request"] == {
            "description": "kagari run 2025-0612"}, "journal %r" % commits)


def test_panos_commit_failure_and_lock():
    """A commit whose job ends FAIL fails the run's call with the job's messages; a
    configuration lock held by another admin fails changes and commits with the
    firewall's message; after the lock is released the commit goes through."""
    body = """
    rec("group", panos.add_to_group("kagari-block", "no-such-object"))
    rec("commit", panos.commit())
"""
    with PanosEnv("commitfail", body) as env:
        out, _, _ = env.fire()
        check(out["group"]["ok"], "%r" % out["group"])
        e = out["commit"]["e"] or ""
        check(not out["commit"]["ok"] and "FAIL" in e and "no-such-object" in e
              and "is not a valid reference" in e, "commit %r" % out["commit"])
        env.m.panos_control(fail_next_commit="Validation Error: rule 'x' is invalid")
        out, _, _ = env.fire()
        check("Validation Error: rule 'x' is invalid" in (out["commit"]["e"] or ""),
              "forced %r" % out["commit"])
    body = """
    rec("addr", panos.add_address("h-1", "192.0.2.10"))
    rec("commit", panos.commit())
"""
    with PanosEnv("lock", body) as env:
        env.m.panos_control(lock="admin2")
        out, _, _ = env.fire()
        check(not out["addr"]["ok"] and "Configuration is locked by admin2" in out["addr"]["e"],
              "addr %r" % out["addr"])
        check(not out["commit"]["ok"] and "locked by admin2" in out["commit"]["e"],
              "commit %r" % out["commit"])
        env.m.panos_control(lock=None)
        out, _, _ = env.fire()
        check(out["addr"]["ok"] and out["commit"]["ok"], "%r" % out)


def test_panos_commit_running_is_waited_for():
    """A commit job already running (another admin's) is waited for, not answered with a
    second commit the firewall would refuse; several runs committing at once share one
    commit job."""
    body = """
    rec("addr", panos.add_address("h-" .. alert.raw.n, "192.0.2." .. alert.raw.n))
    rec("commit", panos.commit())
"""
    with PanosEnv("waitcommit", body) as env:
        env.m.panos_control(commit_polls=4, start_commit="admin2")
        ids = [env.post({"n": n}) for n in (11, 12, 13)]
        for aid in ids:
            out, _, _ = env.result(aid)
            check(out["commit"]["ok"] and out["commit"]["v"]["result"] == "OK",
                  "commit %r" % out["commit"])
        st = env.m.panos_state()
        check(st["counters"]["in_progress"] == 0, "a commit was sent while one ran: %r" % st)
        # The other admin's commit may have carried these changes (the mock commits the
        # whole candidate); at most one commit job of ours follows it.
        mine = [j for j in st["jobs"] if j["admin"] == "soar-api"]
        check(len(mine) <= 1 and all(j["result"] == "OK" for j in st["jobs"]),
              "jobs %r" % st["jobs"])
        check(st["jobs"][0]["admin"] == "admin2" and st["jobs"][0]["polls"] >= 4,
              "the running job was not waited for: %r" % st["jobs"])
        check(not st["dirty"] and len(st["addresses"]) == 3, "state %r" % st)
        check("panos.commit_wait" in env.d.log(), "no wait logged")


def test_panos_commit_parked_survives_kill9():
    """kill -9 while a run is parked on its commit (the job still running): after the
    restart the run's commit starts over, finds its own job still running and waits for
    it, then finds nothing left to commit: one commit job in all, and the run ends done."""
    body = """
    rec("addr", panos.add_address("h-9", "192.0.2.9"))
    rec("commit", panos.commit())
"""
    with PanosEnv("commitkill", body) as env:
        env.m.panos_control(commit_polls=30)
        aid = env.post()
        wait_for(lambda: env.m.panos_state()["jobs"] or None, 20, "the commit job")
        wait_for(lambda: env.m.panos_state()["jobs"][0]["polls"] >= 2 or None, 20, "polls")
        env.d.kill9()
        env.d.start()
        out, _, journal = env.result(aid, timeout=60)
        check(out["commit"]["ok"] and out["commit"]["v"]["result"] == "OK", "%r" % out)
        st = env.m.panos_state()
        check(len(st["jobs"]) == 1 and st["jobs"][0]["result"] == "OK"
              and st["counters"]["in_progress"] == 0, "jobs %r" % st)
        check("panos.commit_wait" in env.d.log(), "the restarted commit did not wait")


test_panos_commit_parked_survives_kill9.TIMEOUT = 90


def test_panos_kill9_between_register_and_answer():
    """kill -9 after the uid-message reached the firewall but before its answer: after
    the restart the block is in doubt, the engine asks the firewall (show registered-ip)
    and finds the tag, and does not register again."""
    body = 'rec("block", panos.block_ip(alert.raw.ip))\n'
    with PanosEnv("kill9", body) as env:
        env.m.delay("/api/", 30000)
        aid = env.post({"ip": "203.0.113.66"})
        wait_for(lambda: env.api_requests("panos.user-id") or None, 20, "the uid-message")
        wait_for(lambda: "203.0.113.66" in [e["ip"] for e in env.m.registered_ips()], 10,
                 "the registration")
        env.d.kill9()
        env.m.delay("/api/", 0)
        env.d.start()
        out, run, journal = env.result(aid)
        check(out["block"]["ok"] and out["block"]["v"]["status"] == "reconciled",
              "block %r" % out["block"])
        check(len(env.api_requests("panos.user-id")) == 1, "registered twice: %r"
              % env.api_requests())
        check(len(env.api_requests("panos.op")) >= 1, "no reconciling show")
        c = env.m.counters()["panos"]
        check(c["registered"] == 1 and c["register_exists"] == 0, "counters %r" % c)
        check("panos.reconciled" in env.d.log(), "no reconciliation logged")


test_panos_kill9_between_register_and_answer.TIMEOUT = 90


def test_panos_end_to_end_http_alert_blocks_source():
    """A PAN-OS-like threat alert posted to the HTTP intake runs the shipped playbook
    block-threat-source, which blocks the alert's source address: the mock firewall has
    the tag with a day's timeout. A threat from a guard-listed address is refused, and
    nothing is sent for it."""
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "playbooks", "block-threat-source.lua")) as f:
        source = f.read()
    with PanosEnv("e2e", "", extra='never_block = { "192.0.2.53" }',
                  files={"block-threat-source.lua": source}) as env:
        def threat(sid, src):
            return {"source": "panos.threat", "source_id": sid, "severity": "critical",
                    "title": "THREAT spyware: Cobalt Strike beacon",
                    "observables": [{"type": "ip", "value": "10.1.2.3", "role": "dst"},
                                    {"type": "ip", "value": src, "role": "src"}]}

        aid = expect_accepted(env.d.post(threat("fw1-1001", "203.0.113.77")), 1)[0]
        run = env.d.wait_run_final(aid, playbook="block-threat-source")
        check(run["state"] == "done", "run %r" % run)
        tags = tags_of(env.m, "203.0.113.77")
        check(tags.get("kagari-block", {}).get("timeout") == 86400, "mock %r" % tags)
        aid = expect_accepted(env.d.post(threat("fw1-1002", "192.0.2.53")), 1)[0]
        run = env.d.wait_run_final(aid, playbook="block-threat-source")
        journal = env.d.run_show(run["id"])["journal"]
        blk = effects(journal, "panos.block_ip")
        check(len(blk) == 1 and blk[0]["status"] == "failed"
              and "never blocked" in json.dumps(blk[0]["result"]), "journal %r" % journal)
        check([e["ip"] for e in env.m.registered_ips()] == ["203.0.113.77"], "mock state")


def test_panos_end_to_end_syslog_threat_blocks_source():
    """The whole path from the firewall's own log: a PAN-OS THREAT line (critical, Log4j
    from 203.0.113.88; the fixture's line with the action "alert" instead of
    "reset-both", so the exploit got through and the alert stays critical: a blocked one
    is rated lower) arrives over TCP syslog, is parsed into a panos.threat alert with
    the source address in role src, the shipped playbook block-threat-source runs on it,
    and the mock firewall then has the address tagged for a day. The same line sent again
    is the same alert (deduplicated): no second run, no second registration."""
    import os
    import re
    import socket
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "playbooks", "block-threat-source.lua")) as f:
        source = f.read()
    with open(os.path.join(here, "..", "fixtures", "pan-os-threat.log"), "rb") as f:
        line = f.read().split(b"\n")[0] + b"\n"
    check(b"203.0.113.88" in line and b",reset-both," in line, "fixture line: %r" % line[:120])
    line = line.replace(b",reset-both,", b",alert,")
    tail = 'syslog = { listen = { "tcp 127.0.0.1:0 t1" }, utc_offset = "+09:00" }\n'
    with PanosEnv("e2e-syslog", "", files={"block-threat-source.lua": source},
                  config_tail=tail) as env:
        port = int(re.search(r"\bsyslog_tcp=(\d+)", env.d.log()).group(1))
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(line)
            s.close()
        rows = wait_for(lambda: env.d.query("SELECT id, severity, outcome FROM alerts"
                                            " WHERE source = 'panos.threat'")
                        or None, 15, "the THREAT line stored as an alert")
        check(len(rows) == 1 and rows[0][1] >= 3 and rows[0][2] != "blocked",
              "alerts: %r" % rows)
        run = env.d.wait_run_final(rows[0][0], playbook="block-threat-source")
        check(run["state"] == "done", "run %r" % run)
        tags = tags_of(env.m, "203.0.113.88")
        check(tags.get("kagari-block", {}).get("timeout") == 86400, "mock %r" % tags)
        time.sleep(0.5)  # the second line, if it made a second run, would have run by now
        check(len(env.d.runs_of_alert(rows[0][0])) == 1
              and len(env.d.query("SELECT id FROM alerts")) == 1, "the duplicate line ran again")


def test_panos_keygen_cli():
    """kagari panos keygen --tenant t1 reads the admin's user and password once (here as
    two lines of standard input), asks the firewall for its key (type=keygen) and prints
    it encrypted; the daemon started with that api_key can block. Wrong credentials fail
    with the firewall's refusal and print no key; so does a tenant without a panos block;
    the password never appears in the output."""
    from harness import run_cli
    with MockServer() as m:
        cfg = ("connectors = { ca_file = %s }\n"
               "tenants = { t1 = { panos = { url = %s } } }\n"
               % (lua_str(m.ca_file), lua_str(m.base_url)))
        d = Daemon("panos-keygen", config_extra=cfg)
        try:
            args = ["panos", "keygen", "--tenant", "t1", "--config", d.config]
            p = run_cli(args, input="%s\n%s\n" % (mockctl.PANOS_USER, mockctl.PANOS_PASSWORD),
                        check_rc=0)
            enc = p.stdout.strip()
            check(enc.startswith("enc:v1:") and PANOS_KEY not in p.stdout + p.stderr
                  and mockctl.PANOS_PASSWORD not in p.stdout + p.stderr, "output %r" % p)
            check(m.counters()["panos"]["keygen"] == 1, "keygen not called")
            p = run_cli(args, input="soar-api\nwrong-password\n", check_rc=1)
            check("refused the user and password" in p.stderr and "Invalid Credential"
                  in p.stderr and p.stdout == "" and "wrong-password" not in p.stderr,
                  "bad password %r" % p)
            p = run_cli(["panos", "keygen", "--tenant", "nope", "--config", d.config],
                        input="a\nb\n", check_rc=1)
            check("no tenants.nope.panos block" in p.stderr, "%r" % p.stderr)
            run_cli(["panos", "keygen", "--config", d.config], check_rc=2)
            p = run_cli(["--help"], check_rc=0)
            check("panos keygen" in p.stdout, "help %r" % p.stdout)
            # the encrypted key works
            with open(d.config, "a") as f:
                f.write("tenants.t1.panos.api_key = %s\n" % lua_str(enc))
            d.write_playbook("fw.lua", playbook("fw", "it.panos", PRELUDE
                                                + 'rec("b", panos.block_ip("203.0.113.99"))\n'))
            d.start()
            aid = expect_accepted(d.post({"source": "it.panos", "source_id": "k1"}), 1)[0]
            run = d.wait_run_final(aid)
            out = outputs(d.run_show(run["id"])["journal"])
            check(out["b"]["ok"], "block with the new key %r" % out)
            d.stop()
        finally:
            d.__exit__(None, None, None)


def test_panos_edl_served_per_tenant():
    """The tenant's block list is served at GET /edl/<tenant> (HTTP Basic with its own
    credential, not the intake token) in EDL text format, one address or subnet a line:
    blocks the firewall confirmed appear, unblocked and expired ones go, other tags have
    their own list, and the list survives a restart. A wrong or missing credential, an
    unknown tenant and the intake's bearer token all get the same 401."""
    import base64
    body = """
    for _, ip in ipairs(alert.raw.block) do rec("b" .. ip, panos.block_ip(ip)) end
    rec("short", panos.block_ip("203.0.113.50", { timeout = 1 }))
    rec("watch", panos.block_ip("203.0.113.60", { tag = "watch" }))
    for _, ip in ipairs(alert.raw.unblock) do rec("u" .. ip, panos.unblock_ip(ip)) end
"""
    extra = 'edl_user = "edl", edl_password = "edl-pass-1"'

    def basic(user, pw):
        return {"Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (user, pw)).encode()).decode()}

    with PanosEnv("edl", body, extra=extra) as env:
        out, _, _ = env.fire({"block": ["203.0.113.10", "198.51.100.0/24", "2001:db8::7"],
                              "unblock": ["203.0.113.10"]})
        check(all(v["ok"] for v in out.values()), "%r" % out)
        with env.d.client() as c:
            r = c.request("GET", "/edl/t1", headers=basic("edl", "edl-pass-1"))
            check(r.status == 200 and r.header("Content-Type").startswith("text/plain"),
                  "edl %r" % r)
            lines = r.body.decode().splitlines()
            check(sorted(lines) == ["198.51.100.0/24", "2001:db8::7", "203.0.113.50"],
                  "edl lines %r" % lines)
            r = c.request("GET", "/edl/t1/watch", headers=basic("edl", "edl-pass-1"))
            check(r.body.decode().splitlines() == ["203.0.113.60"], "watch %r" % r)
            for hdrs in (basic("edl", "wrong"), basic("nope", "edl-pass-1"), {},
                         {"Authorization": "Bearer " + env.d.token}):
                r = c.request("GET", "/edl/t1", headers=hdrs)
                check(r.status == 401 and r.header("WWW-Authenticate"), "%r -> %r" % (hdrs, r))
            r = c.request("GET", "/edl/other", headers=basic("edl", "edl-pass-1"))
            check(r.status == 401, "unknown tenant %r" % r)
            r = c.request("POST", "/edl/t1", body=b"x", headers=basic("edl", "edl-pass-1"))
            check(r.status == 405, "POST %r" % r)
        time.sleep(1.2)
        env.d.stop()
        env.d.start()
        with env.d.client() as c:
            r = c.request("GET", "/edl/t1", headers=basic("edl", "edl-pass-1"))
            check(sorted(r.body.decode().splitlines()) == ["198.51.100.0/24", "2001:db8::7"],
                  "after expiry and restart %r" % r)


def test_panos_edl_over_https():
    """With the intake on TLS, a firewall pulls the EDL over HTTPS with the tenant's EDL
    credential and the engine's certificate."""
    import base64
    import http.client
    import ssl
    body = 'rec("b", panos.block_ip("203.0.113.44"))\n'
    with PanosEnv("edltls", body, extra='edl_user = "edl", edl_password = "pw-2"',
                  tls=True) as env:
        cert = env.cert
        ctx = ssl.create_default_context(cafile=cert)
        c = http.client.HTTPSConnection("127.0.0.1", env.d.port, context=ctx, timeout=10)
        c.request("POST", "/api/v1/alerts", json.dumps({"source": "it.panos",
                                                        "source_id": "tls-1"}),
                  {"Authorization": "Bearer " + env.d.token,
                   "Content-Type": "application/json"})
        r = c.getresponse()
        aid = json.loads(r.read())["ids"][0]
        check(r.status == 202, "post %d" % r.status)
        out, _, _ = env.result(aid)
        check(out["b"]["ok"], "%r" % out)
        auth = base64.b64encode(b"edl:pw-2").decode()
        c.request("GET", "/edl/t1", headers={"Authorization": "Basic " + auth})
        r = c.getresponse()
        data = r.read().decode()
        check(r.status == 200 and data == "203.0.113.44\n", "EDL over HTTPS: %d %r"
              % (r.status, data))
        c.close()


def test_panos_settings_refused():
    """Bad panos settings stop the start with the setting's path and what is wrong: no
    url, a never_block entry that is not an address or subnet (or has host bits set), a
    never_block written as one string, a tag that could not be written into a request,
    edl_user without edl_password, an out-of-range timeout."""
    cases = [
        ('panos = { api_key = "k" }', "url is required"),
        ('panos = { url = "https://fw.example.jp", never_block = { "10.0.0.0/8", "nope" } }',
         "never_block[2]: expected an IP address or a CIDR subnet"),
        ('panos = { url = "https://fw.example.jp", never_block = { "10.1.2.3/8" } }',
         "host bits zero"),
        ('panos = { url = "https://fw.example.jp", never_block = "10.0.0.0/8" }',
         "expected a list of addresses"),
        ('panos = { url = "https://fw.example.jp", tag = "a\\"b" }', "tag: expected"),
        ('panos = { url = "https://fw.example.jp", edl_user = "edl" }', "edl_user and"),
        ('panos = { url = "https://fw.example.jp", block_timeout = "31d" }', "block_timeout"),
        ('panos = { url = "https://fw.example.jp", vsys = "vsys1\']" }', "vsys"),
    ]
    d = Daemon("panos-settings")
    try:
        base = open(d.config).read()
        for block, words in cases:
            with open(d.config, "w") as f:
                f.write(base + "\ntenants = { t1 = { %s } }\n" % block)
            try:
                d.start(timeout=15)
            except TestFailure as e:
                check(words in str(e) and "tenants.t1.panos" in str(e), "%s: %s" % (block, e))
            else:
                d.stop()
                raise TestFailure("kagari started with %r" % block)
    finally:
        d.__exit__(None, None, None)


def test_panos_not_configured():
    """A tenant without a panos block gets nil and a message naming the setting from
    every function; nothing raises, the run goes on."""
    body = """
    rec("block", panos.block_ip("203.0.113.1"))
    rec("unblock", panos.unblock_ip("203.0.113.1"))
    rec("list", panos.blocked{})
    rec("addr", panos.add_address("h-1", "203.0.113.1"))
    rec("commit", panos.commit())
"""
    d = Daemon("panos-none")
    try:
        d.write_playbook("fw.lua", playbook("fw", "it.panos", PRELUDE + body))
        d.start()
        aid = expect_accepted(d.post({"source": "it.panos", "source_id": "n1"}), 1)[0]
        run = d.wait_run_final(aid)
        check(run["state"] == "done", "run %r" % run)
        out = outputs(d.run_show(run["id"])["journal"])
        for k in ("block", "unblock", "list", "addr", "commit"):
            check(not out[k]["ok"] and "no panos block is configured" in out[k]["e"],
                  "%s %r" % (k, out[k]))
        d.stop()
    finally:
        d.__exit__(None, None, None)
