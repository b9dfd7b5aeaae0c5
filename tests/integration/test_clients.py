"""Slow and greedy clients: a stalled or trickling request head is cut off after
intake.header_timeout while others are served; past intake.max_conns a connection is
refused (503 or closed) and service resumes once the others close; one client address
cannot take more than intake.max_conns_per_peer connections, and one tenant cannot send
more than intake.tenant_rate alerts per second, while others are still served."""

import math
import socket
import time

from harness import (Client, Daemon, check, expect_accepted, parse_status, raw_exchange,
                     wait_for)

CONFIG = 'intake = { listen = "127.0.0.1:0", header_timeout = 1, max_conns = 8 }'
HALF_HEAD = b"POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"


def read_until_closed(s, limit):
    """Read from s until the server closes it (returns (data, seconds)) or limit passes
    (returns (data, None))."""
    t0 = time.monotonic()
    data = b""
    while time.monotonic() - t0 < limit:
        s.settimeout(max(0.05, limit - (time.monotonic() - t0)))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        except ConnectionResetError:
            return data, time.monotonic() - t0
        if not chunk:
            return data, time.monotonic() - t0
        data += chunk
    return data, None


def open_conns(d):
    m = d.metrics()
    return m.get("kagari_intake_connections")


def test_stalled_head():
    with Daemon("slowhead", CONFIG) as d:
        d.start()
        slow = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        try:
            t0 = time.monotonic()
            slow.sendall(HALF_HEAD)
            # another client is served meanwhile
            with d.client() as c:
                check(c.get("/healthz").status == 200, "healthz while a head is stalled")
                expect_accepted(c.post({"source": "it.slow", "source_id": "s-1"}), 1)
            served = time.monotonic() - t0
            check(served < 0.9, "the other client took %.2fs (the stalled head blocked it?)"
                  % served)
            slow.settimeout(0.0)
            try:
                early = slow.recv(1)
            except BlockingIOError:
                early = None
            check(early is None, "the stalled connection was answered/closed before"
                                 " header_timeout: %r" % early)
            data, took = read_until_closed(slow, 6.0)
            took = time.monotonic() - t0 if took is not None else None
            check(took is not None, "stalled head not closed within 6s (header_timeout = 1)")
            check(0.8 <= took <= 4.0, "stalled head closed after %.2fs, header_timeout = 1"
                  % took)
            status = parse_status(data)
            check(status in (None, 408), "stalled head got %r" % data[:200])
        finally:
            slow.close()

        # a trickle of one byte every 200 ms does not keep a head alive past the timeout
        req = (b"POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Authorization: Bearer " + d.token.encode() + b"\r\n" + b"X-Pad: " + b"a" * 200)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        try:
            t0 = time.monotonic()
            closed_at = None
            for i in range(len(req)):
                try:
                    s.sendall(req[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic() - t0
                    break
                s.settimeout(0.2)
                try:
                    s.recv(4096)  # a 408 or the close: the server gave up on the head
                    closed_at = time.monotonic() - t0
                    break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_at = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > 6:
                    break
            check(closed_at is not None, "a trickled head was kept open for 6s")
            check(closed_at <= 4.0, "a trickled head was cut only after %.2fs" % closed_at)
        finally:
            s.close()
        with d.client() as c:
            expect_accepted(c.post({"source": "it.slow", "source_id": "s-2"}), 1)
        d.stop()


def test_peer_cap():
    config = ('intake = { listen = "127.0.0.1:0", max_conns = 64, max_conns_per_peer = 4 }')
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with Daemon("peercap", config) as d:
        d.start()
        held = []
        try:
            for i in range(4):
                c = Client(d.port, d.token)
                check(c.get("/healthz").status == 200, "connection %d refused under the cap" % i)
                held.append(c)
            # the 5th from the same address: 503 with Retry-After, closed, not served
            raw, closed = raw_exchange(d.port, get, timeout=5, source="127.0.0.1")
            check(parse_status(raw) == 503 and closed,
                  "5th connection from one address got %r (closed=%s)" % (raw[:300], closed))
            check(b"\r\nRetry-After: 1\r\n" in raw and b"from this address" in raw,
                  "per-peer 503 without Retry-After or reason: %r" % raw[:400])
            # another client address is served meanwhile, alerts included
            raw, _ = raw_exchange(d.port, get, timeout=5, source="127.0.0.2")
            check(parse_status(raw) == 200, "another address refused: %r" % raw[:300])
            body = b'{"source":"it.peer","source_id":"other-address"}'
            raw, _ = raw_exchange(
                d.port, b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + d.token.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body),
                timeout=5, source="127.0.0.2")
            check(parse_status(raw) == 202, "alert from another address: %r" % raw[:300])
            # the held connections still work
            expect_accepted(held[0].post({"source": "it.peer", "source_id": "held-0"}), 1)
        finally:
            for c in held:
                c.close()
        # once they close, the first address is served again
        wait_for(lambda: parse_status(raw_exchange(d.port, get, timeout=2)[0]) == 200, 5,
                 "service to the first address after its connections closed")
        m = d.metrics()
        check(m.get("kagari_intake_conns_refused_total") == 1,
              "kagari_intake_conns_refused_total: %r" % m.get("kagari_intake_conns_refused_total"))
        d.stop()


def test_tenant_rate():
    config = 'intake = { listen = "127.0.0.1:0", tenant_rate = 1, tenant_burst = 3 }'
    with Daemon("tenantrate", config) as d:
        d.add_tenant("t2")
        d.start()
        c1 = d.client()
        c2 = d.client("t2")
        try:
            t0 = time.monotonic()
            codes = []
            throttled = None
            for i in range(8):
                r = c1.post({"source": "it.rate", "source_id": "t1-%d" % i})
                codes.append(r.status)
                if r.status == 429:
                    throttled = r
                    break
                expect_accepted(r, 1)
            elapsed = time.monotonic() - t0
            check(throttled is not None, "tenant over its rate never got 429: %r" % codes)
            check(codes.count(202) >= 3, "the burst of 3 was not accepted: %r" % codes)
            check(codes.count(202) <= 3 + math.ceil(elapsed),
                  "%d accepted in %.2fs at 1/s with a burst of 3" % (codes.count(202), elapsed))
            check(throttled.json and throttled.json.get("error") == "rate_limited",
                  "429 body: %r" % throttled)
            ra = throttled.header("Retry-After")
            check(ra is not None and ra.isdigit() and 1 <= int(ra) <= 2,
                  "429 Retry-After: %r" % ra)
            # another tenant is accepted meanwhile, on the same address
            expect_accepted(c2.post({"source": "it.rate", "source_id": "t2-0"}), 1)
            # the same tenant again after Retry-After; a batch larger than what is left is
            # accepted, and then the tenant waits until it is paid for
            time.sleep(int(ra) + 0.2)
            batch = [{"source": "it.rate", "source_id": "batch-%d" % i} for i in range(6)]
            expect_accepted(c1.post(batch), 6)
            r = c1.post({"source": "it.rate", "source_id": "after-batch"})
            check(r.status == 429, "right after a batch of 6 at 1/s: %r" % r)
            check(int(r.header("Retry-After") or 0) >= 4,
                  "Retry-After after a batch of 6: %r" % r.header("Retry-After"))
            expect_accepted(c2.post({"source": "it.rate", "source_id": "t2-1"}), 1)
            m = d.metrics()
            check(m.get("kagari_intake_throttled_total") == 2,
                  "kagari_intake_throttled_total: %r" % m.get("kagari_intake_throttled_total"))
        finally:
            c1.close()
            c2.close()
        rows = d.query("SELECT source_id FROM alerts WHERE source_id = 'after-batch'")
        check(rows == [], "a throttled alert was stored: %r" % rows)
        d.stop()


def test_connection_cap():
    with Daemon("maxconns", CONFIG) as d:
        d.start()
        # only the metrics request's own connection is open
        wait_for(lambda: open_conns(d) == 1, 5, "no other open intake connection")
        held = []
        try:
            for i in range(8):
                c = Client(d.port, d.token)
                check(c.get("/healthz").status == 200, "connection %d refused under the cap" % i)
                held.append(c)
            # the 9th: 503 or closed, never served
            raw, closed = raw_exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                       timeout=5)
            status = parse_status(raw)
            check(status == 503 or (status is None and closed),
                  "connection over max_conns got %r (closed=%s)" % (raw[:200], closed))
            raw, closed = raw_exchange(
                d.port, b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + d.token.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: 34\r\n\r\n{\"source\":\"it.cap\",\"title\":\"over\"}",
                timeout=5)
            status = parse_status(raw)
            check(status == 503 or (status is None and closed),
                  "alert over max_conns got %r (closed=%s)" % (raw[:200], closed))
            # the held connections still work
            expect_accepted(held[0].post({"source": "it.cap", "source_id": "held-0"}), 1)
        finally:
            for c in held:
                c.close()

        # after they close, normal service continues
        def served():
            with Client(d.port, d.token, timeout=2) as c:
                r = c.get("/healthz")
                return r.status == 200
        wait_for(served, 5, "service after the held connections closed")
        with d.client() as c:
            expect_accepted(c.post({"source": "it.cap", "source_id": "after"}), 1)
        rows = d.query("SELECT source_id FROM alerts WHERE source = 'it.cap' ORDER BY source_id")
        check(rows == [("after",), ("held-0",)], "it.cap alerts: %r (the refused one stored?)"
              % rows)
        d.stop()
