"""Hostile and broken requests: each gets the right status (and a 400 names the problem),
and a valid alert sent right after it is accepted: the daemon keeps serving."""

import json

from harness import (Client, Daemon, check, expect_accepted, expect_error, parse_status,
                     raw_exchange)

CONFIG = 'intake = { listen = "127.0.0.1:0", max_body = "64KiB" }'


def test_bad_input():
    with Daemon("input", CONFIG) as d:
        d.start()
        n_valid = [0]
        c = d.client()

        def still_serving(what):
            n_valid[0] += 1
            r = c.post({"source": "it.valid", "source_id": "v-%d" % n_valid[0],
                        "title": "after " + what})
            check(r.status == 202, "valid alert after %s: %r" % (what, r))
            expect_accepted(r, 1)

        def bad(what, status, words, **kw):
            r = c.post(**kw)
            try:
                expect_error(r, status, *words)
            except AssertionError as e:
                raise type(e)("%s: %s" % (what, e))
            still_serving(what)

        bad("malformed JSON", 400, ["json"], raw=b'{"source": "it.bad", "title": ')
        bad("malformed JSON (trailing comma)", 400, ["json"],
            raw=b'{"source": "it.bad", "title": "x",}')
        bad("invalid UTF-8", 400, ["UTF-8"],
            raw=b'{"source": "it.bad", "title": "caf\xc3\x28 \xff\xfe"}')
        bad("10000-deep nesting (unbalanced)", 400, [("nest", "deep", "depth")],
            raw=b"[" * 10000)
        bad("10000-deep nesting (balanced)", 400, [("nest", "deep", "depth")],
            raw=b"[" * 10000 + b"]" * 10000)
        bad("10000-deep object nesting", 400, [("nest", "deep", "depth")],
            raw=b'{"a":' * 10000 + b"1" + b"}" * 10000)
        bad("raw NUL byte", 400, ["NUL"],
            raw=b'{"source": "it.bad", "title": "alice\x00@evil"}')
        bad("\\u0000 escape", 400, ["u0000"],
            raw=b'{"source": "it.bad", "observables": '
                b'[{"type": "user", "value": "alice\\u0000@evil"}]}')
        bad("missing source", 400, ["source"], obj={"source_id": "x-1", "title": "no source"})
        bad("missing source in an array", 400, ["source"],
            obj=[{"source": "it.bad", "source_id": "x-2"}, {"title": "no source"}])
        bad("severity: 7", 400, ["severity"], obj={"source": "it.bad", "severity": 7})
        bad("title: 5", 400, ["title"], obj={"source": "it.bad", "title": 5})
        bad("severity: unknown name", 400, ["severity"],
            obj={"source": "it.bad", "severity": "apocalyptic"})
        bad("outcome: unknown name", 400, ["outcome"],
            obj={"source": "it.bad", "outcome": "pwned"})
        bad("observables: not an array", 400, ["observables"],
            obj={"source": "it.bad", "observables": "1.2.3.4"})
        bad("not an alert", 400, [], raw=b'"just a string"')
        # More alerts than a request may carry: refused before any is read (this once
        # freed an array that was never allocated and killed the daemon).
        many = b",".join([b"{}"] * 10001)
        bad("10001 alerts in an array", 400, ["more than 10000"], raw=b"[" + many + b"]")
        bad("10001 records", 400, ["records", "more than 10000"],
            raw=b'{"records":[' + many + b"]}")
        bad("wrong content type", 415, [], obj={"source": "it.bad"}, content_type="text/plain")
        bad("no content type", 415, [], obj={"source": "it.bad"}, content_type=None)
        bad("no token", 401, [], obj={"source": "it.bad"}, token=None)
        bad("wrong token", 401, [], obj={"source": "it.bad"}, token="kg_" + "0" * 64)
        r = c.request("POST", "/api/v1/alerts", body=b'{"source": "it.bad"}',
                      headers={"Authorization": "Basic " + d.token,
                               "Content-Type": "application/json"})
        expect_error(r, 401)
        still_serving("a token of another scheme")

        r = c.request("GET", "/api/v1/alerts", headers={"Authorization": "Bearer " + d.token})
        expect_error(r, 405)
        still_serving("GET on the alerts path")
        r = c.request("POST", "/api/v1/nothing-here", body=b"{}",
                      headers={"Authorization": "Bearer " + d.token,
                               "Content-Type": "application/json"})
        expect_error(r, 404)
        still_serving("an unknown path")
        r = c.get("/nope")
        expect_error(r, 404)
        still_serving("GET an unknown path")

        # over intake.max_body: 413, whether announced by Content-Length or chunked
        big = json.dumps({"source": "it.bad", "blob": "x" * 100000}).encode()
        head = ("POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json\r\n" % d.token)
        raw, _ = raw_exchange(d.port, (head + "Content-Length: %d\r\n\r\n" % len(big)).encode()
                              + big)
        check(parse_status(raw) == 413, "body over max_body: expected 413, got %r" % raw[:200])
        still_serving("a body over max_body")
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 8192]), big[i:i + 8192])
                          for i in range(0, len(big), 8192)) + b"0\r\n\r\n"
        raw, _ = raw_exchange(d.port, (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
                              + chunks)
        check(parse_status(raw) == 413,
              "chunked body over max_body: expected 413, got %r" % raw[:200])
        still_serving("a chunked body over max_body")
        # A bare LF instead of CRLF is refused (400), in the head and in chunked framing,
        # and the request is not served even though it is otherwise complete.
        lf_body = b'{"source":"it.bad","title":"bare LF"}'
        lf_head = head.replace("\r\n", "\n").encode()
        raw, closed = raw_exchange(d.port, lf_head + b"Content-Length: %d\n\n" % len(lf_body)
                                   + lf_body)
        check(parse_status(raw) == 400 and b"CRLF" in raw and closed,
              "bare-LF request head: expected 400 naming CRLF, got %r" % raw[:300])
        still_serving("a bare-LF request head")
        raw, closed = raw_exchange(d.port, (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
                                   + b"%x\n%s\n0\n\n" % (len(lf_body), lf_body))
        check(parse_status(raw) == 400 and b"CRLF" in raw and closed,
              "bare-LF chunk framing: expected 400 naming CRLF, got %r" % raw[:300])
        still_serving("bare-LF chunk framing")

        # just under the limit is fine
        fits = json.dumps({"source": "it.valid", "source_id": "fits", "blob": "y" * 60000})
        expect_accepted(c.post(raw=fits.encode()), 1)
        n_valid[0] += 1

        # keep-alive connection reused after all of that, and a fresh one
        still_serving("everything")
        with Client(d.port, d.token) as c2:
            check(c2.get("/healthz").status == 200, "healthz after bad input")
        c.close()

        rows = d.query("SELECT source, COUNT(*) FROM alerts GROUP BY source ORDER BY source")
        check(rows == [("it.valid", n_valid[0])],
              "stored alerts %r, expected only the %d valid ones" % (rows, n_valid[0]))
        d.stop()
