"""Why did my alerts not arrive? Every response carries X-Request-Id; every rejected
request (401, 400, 413, 415, 429, 404, the server's own 4xx) logs one line with tenant
(when known), peer, reason and request id, at most 5 per reason per 10 s with the rest
counted in intake.rejected_suppressed; accepted requests log one info line per tenant
per loop iteration (one per request when they come one at a time), counting them."""

import re
import time

from harness import Daemon, check, expect_accepted, parse_status, raw_exchange, wait_for
from test_untrusted_text import unsafe_bytes

ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{8}$")


def rejected_lines(d, reason=None):
    lines = [ln for ln in d.log().splitlines() if "event=intake.rejected " in ln]
    if reason is not None:
        lines = [ln for ln in lines if (" reason=%s " % reason) in ln]
    return lines


def line_for(d, request_id):
    lines = [ln for ln in d.log().splitlines() if ("request=%s " % request_id) in ln]
    check(len(lines) == 1, "want one log line for request %s, got %r" % (request_id, lines))
    return lines[0]


def test_request_ids_and_rejection_lines():
    config = 'intake = { listen = "127.0.0.1:0", tenant_rate = 1, tenant_burst = 3 }'
    with Daemon("intake-log", config_extra=config) as d:
        d.start()
        seen = set()
        with d.client() as c:
            ok = c.post({"source": "it.log", "source_id": "1"})
            expect_accepted(ok, 1)
            rid = ok.header("X-Request-Id")
            check(rid is not None and ID_RE.match(rid), "202 X-Request-Id: %r" % rid)
            seen.add(rid)
            acc = wait_for(lambda: [ln for ln in d.log().splitlines()
                                    if "event=intake.accepted" in ln and rid in ln], 5,
                           "intake.accepted line")
            check("level=info" in acc[0], acc[0])
            check(("tenant=%s requests=1 alerts=1 new=1 duplicates=0 events=0 left_out=0 "
                   "peers=127.0.0.1 request=%s " % (d.tenant, rid)) in acc[0],
                  "accepted line: %r" % acc[0])
            # 400 bad_json from a known tenant
            r = c.post(raw=b'{"source": "x", ')
            check(r.status == 400, "bad json: %r" % r)
            ln = line_for(d, r.header("X-Request-Id"))
            check("status=400 reason=bad_json tenant=%s peer=127.0.0.1" % d.tenant in ln and
                  "level=warn" in ln, "bad_json line: %r" % ln)
            seen.add(r.header("X-Request-Id"))
            # 415 wrong content type
            r = c.post({"a": 1}, content_type="text/plain")
            check(r.status == 415, "415: %r" % r)
            check("reason=unsupported_media_type tenant=%s" % d.tenant
                  in line_for(d, r.header("X-Request-Id")), "415 line")
            seen.add(r.header("X-Request-Id"))
            # 429: the bucket (burst 3: three requests so far) is empty now
            r = c.post({"source": "it.log", "source_id": "2"})
            check(r.status == 429, "429: %r" % r)
            check("status=429 reason=rate_limited tenant=%s" % d.tenant
                  in line_for(d, r.header("X-Request-Id")), "429 line")
            seen.add(r.header("X-Request-Id"))
            # 401: unknown token, tenant unknown
            r = c.post({"a": 1}, token="kg_" + "0" * 64)
            check(r.status == 401, "401: %r" % r)
            check("status=401 reason=unauthorized tenant=- peer=127.0.0.1"
                  in line_for(d, r.header("X-Request-Id")), "401 line")
            seen.add(r.header("X-Request-Id"))
            # 404 with a hostile path: escaped in the log
            r = c.request("GET", "/api/v1/alerts%1b%5b2J%e2%80%a8x")
            check(r.status == 404, "404: %r" % r)
            ln = line_for(d, r.header("X-Request-Id"))
            check("reason=not_found" in ln and "\\x1b[2J" in ln, "404 line: %r" % ln)
            seen.add(r.header("X-Request-Id"))
            h = c.get("/healthz")
            check(ID_RE.match(h.header("X-Request-Id") or ""), "healthz has no X-Request-Id")
            seen.add(h.header("X-Request-Id"))
        check(len(seen) == 7, "request ids are not unique: %r" % seen)
        # 413 from the HTTP layer itself (before the handler): the id is in the raw
        # response and in the log line
        raw, _ = raw_exchange(d.port, b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 999999999\r\n\r\n")
        check(parse_status(raw) == 413, "413: %r" % raw[:200])
        m = re.search(rb"\r\nX-Request-Id: ([0-9a-f-]+)\r\n", raw)
        check(m is not None, "413 without X-Request-Id: %r" % raw[:300])
        ln = line_for(d, m.group(1).decode())
        check("status=413 reason=too_large tenant=- peer=127.0.0.1" in ln, "413 line: %r" % ln)
        # The same with the tenant's token in the head: the line names the tenant
        raw, _ = raw_exchange(d.port, ("POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n"
                                       "Authorization: Bearer %s\r\n"
                                       "Content-Length: 999999999\r\n\r\n" % d.token).encode())
        m = re.search(rb"\r\nX-Request-Id: ([0-9a-f-]+)\r\n", raw)
        check(parse_status(raw) == 413 and m is not None, "413: %r" % raw[:300])
        ln = line_for(d, m.group(1).decode())
        check("status=413 reason=too_large tenant=%s " % d.tenant in ln, "413 line: %r" % ln)
        check(d.token not in d.log(), "the token reached the log")
        raw, _ = raw_exchange(d.port, b"GARBAGE\r\n\r\n")
        check(parse_status(raw) == 400, "400 framing: %r" % raw[:200])
        m = re.search(rb"\r\nX-Request-Id: ([0-9a-f-]+)\r\n", raw)
        check(m is not None and "reason=bad_request" in line_for(d, m.group(1).decode()),
              "framing 400 line")
        d.stop()
        with open(d.log_path, "rb") as f:
            why = unsafe_bytes(f.read())
        check(why is None, "the log has %s" % why)


def test_rejection_log_rate_limited():
    """30 bad requests of one reason in a burst: 5 lines, then one line counting the 25
    others when the 10 s window ends; another reason has its own budget."""
    with Daemon("intake-log-limit") as d:
        d.start()
        with d.client() as c:
            for _ in range(30):
                check(c.post(raw=b"[").status == 400, "bad json accepted")
            for _ in range(3):
                check(c.post({"a": 1}, token="kg_bad").status == 401, "bad token accepted")
        check(len(rejected_lines(d, "bad_json")) == 5,
              "bad_json lines: %d" % len(rejected_lines(d, "bad_json")))
        check(len(rejected_lines(d, "unauthorized")) == 3, "unauthorized lines")
        ln = wait_for(lambda: [x for x in d.log().splitlines()
                               if "event=intake.rejected_suppressed reason=bad_json" in x],
                      15, "intake.rejected_suppressed line")
        check(len(ln) == 1 and "suppressed=25" in ln[0], "suppressed line: %r" % ln)
        check(not [x for x in d.log().splitlines()
                   if "rejected_suppressed reason=unauthorized" in x],
              "a reason under its budget reported suppressions")
        # A new window: lines again
        with d.client() as c:
            check(c.post(raw=b"[").status == 400, "bad json accepted")
        check(len(rejected_lines(d, "bad_json")) == 6, "no line in the new window")
        d.stop()


test_rejection_log_rate_limited.TIMEOUT = 90


def test_accepted_lines_aggregate():
    """Many requests at once: every accepted alert is counted in some intake.accepted
    line, with fewer lines than requests (one per tenant per loop iteration)."""
    import threading
    with Daemon("intake-log-acc") as d:
        d.start()
        n_threads, per = 8, 25

        def send(k):
            with d.client() as c:
                for i in range(per):
                    expect_accepted(c.post([{"source": "it.acc", "source_id": "%d-%d-%d" % (k, i, j)}
                                            for j in range(2)]), 2)

        ts = [threading.Thread(target=send, args=(k,)) for k in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        # An envelope with a record that cannot be understood: accepted, the record left
        # out, and the line says so at warn
        r = d.post({"records": [{"source": "it.acc", "source_id": "env-1"}, 5]})
        check(r.status == 202 and len(r.json.get("rejected", [])) == 1, "envelope: %r" % r)
        rid = r.header("X-Request-Id")
        ln = wait_for(lambda: [x for x in d.log().splitlines()
                               if "event=intake.accepted" in x and rid in x], 5, "its line")[0]
        check("level=warn" in ln and " left_out=1 " in ln, "left-out line: %r" % ln)
        d.stop()  # the last line is written at the stop
        lines = [ln for ln in d.log().splitlines() if "event=intake.accepted" in ln]
        total_req = sum(int(re.search(r" requests=(\d+)", ln).group(1)) for ln in lines)
        total_new = sum(int(re.search(r" new=(\d+)", ln).group(1)) for ln in lines)
        check(total_req == n_threads * per + 1 and total_new == 2 * n_threads * per + 1,
              "accepted lines count %d requests, %d alerts" % (total_req, total_new))
        check(len(lines) <= total_req, "more lines than requests")
        multi = [ln for ln in lines if " requests=1 " not in ln]
        for ln in multi:
            check(re.search(r" request=[0-9a-f]{8}-[0-9a-f]{8}\.\.[0-9a-f]{8}-[0-9a-f]{8} ", ln),
                  "a line of several requests names their id range: %r" % ln)
