"""Large alert bodies are parsed and normalized on the intake's parser threads, off the
loop. What a sender sees must not change: the same answers as a body parsed on the loop
(ids in order, records left out with their reasons, bad JSON and bad alerts refused with
the same messages, raw byte for byte, counts per source), answers in order on one
connection, a bounded queue (503 overloaded with Retry-After, nothing accepted lost), one
tenant's backlog never holding back another's, a loop that keeps answering while the
threads are busy, and a stop while bodies are with the threads."""

import copy
import json
import os
import signal
import socket
import threading
import time

from harness import Daemon, check, parse_status

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                       "microsoft", "entra-signin.json")

# Over the size the intake parses on the loop (16 KiB): these go to the threads.
BIG = 64 * 1024


def signins(n, prefix):
    """n sign-in records of the fixture in turn, each with an id of its own."""
    with open(FIXTURE) as f:
        base = json.load(f)["records"]
    out = []
    for i in range(n):
        r = copy.deepcopy(base[i % len(base)])
        r["properties"]["id"] = "%s-%d" % (prefix, i)
        r["correlationId"] = "%s-c%d" % (prefix, i)
        out.append(r)
    return out


# Records no normalizer can understand, each with the reason it must be left out for.
BAD = [
    (42, "expected an object"),
    ({"category": "SignInLogs", "properties": {"createdDateTime": "2024-05-01T00:00:00Z",
                                              "id": "x"}}, "status.errorCode"),
    ({"category": "SignInLogs", "properties": {"createdDateTime": "not a time",
                                              "status": {"errorCode": 0}, "id": "y"}},
     "createdDateTime"),
]


def envelope(records):
    """The exact bytes of {"records":[...]}, and each record's own bytes."""
    parts = [json.dumps(r, ensure_ascii=False, separators=(", ", ": ")) for r in records]
    return ('{"records": [\n  ' + ",\n  ".join(parts) + "\n]}").encode(), parts


def mixed(prefix, n=60):
    """An envelope of n good sign-ins with the BAD records at fixed places."""
    recs = signins(n, prefix)
    places = [0, n // 2, n + 2]
    for k, (bad, _) in enumerate(BAD):
        recs.insert(places[k], bad)
    return recs, places


def post_mixed(d, prefix):
    recs, places = mixed(prefix)
    body, parts = envelope(recs)
    check(len(body) > BIG, "the body is large: %d bytes" % len(body))
    r = d.post(raw=body)
    check(r.status == 202, "mixed envelope: %r" % r)
    return r.json, recs, places, parts


def test_threads_answer_as_the_loop():
    """The same envelope (good and bad records) answered by a daemon parsing on the loop
    (parse_threads = 0) and by one parsing on threads: the same counts, the same ids
    (null where left out or an event), the same reasons at the same indexes, and raw
    stored byte for byte; bad JSON and a body of nothing but bad records get the same
    400 with the same message."""
    answers = {}
    for threads in (0, 2):
        cfg = 'intake = { listen = "127.0.0.1:0", parse_threads = %d }' % threads
        with Daemon("offload-same-%d" % threads, cfg) as d:
            d.start()
            j, recs, places, parts = post_mixed(d, "same")
            bad_json = b'{"records": [' + b'{"a": 1}, ' * 10000 + b'{"a": tru}]}'
            r1 = d.post(raw=bad_json)
            only_bad = json.dumps({"records": [BAD[1][0]] * 2000}).encode()
            r2 = d.post(raw=only_bad)
            check(len(bad_json) > BIG and len(only_bad) > BIG, "large refused bodies")
            m = d.metrics()
            where = "thread" if threads else "loop"
            check(m.get('kagari_intake_parsed_total{where="%s"}' % where, 0) >= 3,
                  "bodies parsed on the %s: %r" % (where, m))
            check(m.get('kagari_intake_records_total{source="entra.signin",result="normalized"}')
                  == 60 and
                  m.get('kagari_intake_records_total{source="entra.signin",result="rejected"}')
                  == 2 + 2000, "counts per source: %r" % m)
            # raw byte for byte, for every accepted record (alerts and events)
            raws = {}
            for (raw,) in d.query("SELECT raw FROM alerts"):
                raws[json.loads(raw)["properties"]["id"]] = raw
            for (raw,) in d.query("SELECT raw FROM events"):
                raws[json.loads(raw)["properties"]["id"]] = raw
            for i, r in enumerate(recs):
                if i in places:
                    continue
                rid = r["properties"]["id"]
                got = raws.get(rid)
                if isinstance(got, bytes):
                    got = got.decode()
                check(got == parts[i], "record %d's raw kept byte for byte" % i)
            answers[threads] = (j, r1, r2)
    (a0, b0, c0), (a1, b1, c1) = answers[0], answers[2]
    for k in ("accepted", "duplicates", "alerts", "events", "rejected"):
        check(a0[k] == a1[k], "%s: loop %r, threads %r" % (k, a0[k], a1[k]))
    check([x is None for x in a0["ids"]] == [x is None for x in a1["ids"]],
          "null ids at the same places")
    check([x["index"] for x in a1["rejected"]] == sorted(mixed("x")[1]),
          "left out at their indexes: %r" % a1["rejected"])
    for x, (_, why) in zip(a1["rejected"], BAD):
        check(why in x["error"], "reason %r in %r" % (why, x))
    check(b0.status == b1.status == 400 and b0.json == b1.json and
          b1.json["error"] == "bad_json", "bad JSON: %r / %r" % (b0, b1))
    check(c0.status == c1.status == 400 and c0.json == c1.json and
          c1.json["error"] == "bad_alert", "only bad records: %r / %r" % (c0, c1))


def read_response(f):
    """One HTTP response from a socket file: (status, body, headers by lower-case name)."""
    line = f.readline()
    status = parse_status(line)
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        name, _, v = h.decode().partition(":")
        headers[name.strip().lower()] = v.strip()
    return status, f.read(int(headers.get("content-length", "0"))), headers


def test_pipelined_answers_in_order():
    """Eight envelopes pipelined on one connection, a large one (~1 MB, parsed on a
    thread) then a small one (parsed on the loop) in turn, so that the small one would be
    answered first if answers could overtake: each answer is its own request's (the
    stored alerts of its ids carry that request's prefix), in order. The pipelined bytes
    fill the connection's read-ahead while a request is handled: the loop stops reading
    them (it once spun on them) and goes on with the commit."""
    with Daemon("offload-order", 'intake = { listen = "127.0.0.1:0", parse_threads = 2 }') as d:
        d.start()
        reqs = []
        for k in range(8):
            n = 300 if k % 2 == 0 else 4
            body, _ = envelope(signins(n, "p%d" % k))
            reqs.append((n, b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n"
                            b"Authorization: Bearer " + d.token.encode() + b"\r\n"
                            b"Content-Type: application/json\r\n"
                            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body))
        s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
        try:
            s.sendall(b"".join(r for _, r in reqs))
            f = s.makefile("rb")
            for k, (n, _) in enumerate(reqs):
                status, body, _ = read_response(f)
                check(status == 202, "request %d: %r %r" % (k, status, body[:200]))
                j = json.loads(body)
                check(len(j["ids"]) == n and j["accepted"] == n, "answer %d: %r" % (k, j))
                ids = [i for i in j["ids"] if i is not None]
                check(ids, "request %d has alerts" % k)
                for (raw,) in d.query("SELECT raw FROM alerts WHERE id IN (%s)" %
                                      ",".join(str(i) for i in ids)):
                    rid = json.loads(raw)["properties"]["id"]
                    check(rid.startswith("p%d-" % k), "answer %d holds %s" % (k, rid))
        finally:
            s.close()


def request_bytes(token, body):
    return (b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_queue_bound_and_fairness():
    """One parser thread and a queue of 4 MiB per tenant: tenant A's twelve bodies of
    about 3 MB complete at the same moment (each sent but its last byte, then the last
    bytes together while the loop is held by the test build's "stall" request, so that
    it finds them all at once), and tenant B's body right after them. Two of A's go to the thread,
    one waits, the rest get 503 overloaded with Retry-After (counted); every 202'd record
    is stored, no refused one is. B's body is taken (its queue is its own) and answered
    before A's last; /healthz answers at once meanwhile: the loop never waits for the
    threads."""
    cfg = ('intake = { listen = "127.0.0.1:0", parse_threads = 1, parse_queue = "4MiB" }\n'
           'testing = { clock = true }')
    with Daemon("offload-queue", cfg) as d:
        d.add_tenant("t2")
        d.start()
        reqs = [request_bytes(d.token, envelope(signins(900, "a%d" % k))[0]) for k in range(12)]
        check(all(2500000 < len(r) < 4 << 20 for r in reqs), "bodies of about 3 MB")
        breq = request_bytes(d.tokens["t2"], envelope(signins(100, "b"))[0])
        socks = []
        for r in reqs + [breq]:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
            s.sendall(r[:-1])
            socks.append(s)
        try:
            answers = [None] * 13
            order = []

            def read(k):
                answers[k] = read_response(socks[k].makefile("rb"))
                order.append(k)

            # The readers wait before the last bytes go: the order is the answers' own.
            threads = [threading.Thread(target=read, args=(k,)) for k in range(13)]
            for t in threads:
                t.start()
            stalled = {}
            st = threading.Thread(target=lambda: stalled.update(d.control("stall 400")))
            st.start()
            time.sleep(0.1)  # the loop is asleep now
            for s, r in zip(socks, reqs + [breq]):
                s.sendall(r[-1:])
            st.join(30)
            check(stalled.get("stalled_ms") == 400, "the stall: %r" % stalled)
            h0 = time.monotonic()
            h = d.get("/healthz")
            health_s = time.monotonic() - h0
            for t in threads:
                t.join(60)
        finally:
            for s in socks:
                s.close()
        check(h.status == 200 and health_s < 1.0, "healthz in %.3f s: %r" % (health_s, h))
        status, body, _ = answers[12]
        check(status == 202 and json.loads(body)["accepted"] == 100,
              "tenant B: %r %r" % (status, body[:200]))
        ok = [k for k in range(12) if answers[k][0] == 202]
        shed = [k for k in range(12) if answers[k][0] == 503]
        check(len(ok) + len(shed) == 12, "every answer 202 or 503: %r" %
              [a[0] for a in answers])
        # Taken: the one parsed, the one next for the thread (unless B's is), the one in
        # A's queue; the rest shed.
        check(len(ok) >= 2 and shed, "some shed (%d), some taken (%d)" % (len(shed), len(ok)))
        for k in shed:
            check(json.loads(answers[k][1])["error"] == "overloaded" and
                  answers[k][2].get("retry-after") == "1", "shed: %r" % (answers[k],))
        check(order.index(12) < max(order.index(k) for k in ok),
              "tenant B answered before A's last body: %r" % order)
        ids = [r[0] for r in d.query("SELECT source_id FROM alerts")] + \
            [r[0] for r in d.query("SELECT source_id FROM events")]
        a_ids = [i for i in ids if i.startswith("a")]
        check(len(a_ids) == 900 * len(ok), "stored %d of A's records, want %d" %
              (len(a_ids), 900 * len(ok)))
        check({i.split("-")[0] for i in a_ids} == {"a%d" % k for k in ok},
              "exactly the records of the bodies answered 202")
        m = d.metrics()
        check(m.get("kagari_intake_parse_shed_total") == len(shed), "shed counted")
        check(m.get("kagari_intake_parse_queued") == 0 and m.get("kagari_intake_parsing") == 0,
              "nothing left queued")


def test_stop_while_parsing():
    """SIGTERM while bodies wait for and run on the parser threads: each body is stored
    whole or not at all; one answered 202 is stored, one answered 503 (shutting_down) is
    not, one whose connection closed unanswered may be either (its sender retries, and
    the store deduplicates); the daemon exits cleanly and restarts with that store."""
    cfg = 'intake = { listen = "127.0.0.1:0", parse_threads = 1 }'
    with Daemon("offload-stop", cfg) as d:
        d.start()
        bodies = [envelope(signins(330, "s%d" % k))[0] for k in range(8)]
        results = [None] * 8

        def send(k):
            try:
                with d.client(timeout=60) as c:
                    results[k] = c.post(raw=bodies[k])
            except (ConnectionError, OSError) as e:
                results[k] = e

        threads = [threading.Thread(target=send, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        d.signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        d.wait_exit()  # exit code 0, no sanitizer report
        d.start()
        ids = [r[0] for r in d.query("SELECT source_id FROM alerts")] + \
            [r[0] for r in d.query("SELECT source_id FROM events")]
        for k, r in enumerate(results):
            n = sum(1 for i in ids if i.startswith("s%d-" % k))
            what = getattr(r, "status", r)
            check(n in (0, 330), "body %d stored whole or not at all: %d (%r)" % (k, n, what))
            if isinstance(r, Exception):
                continue
            check(r.status in (202, 503), "answer %d: %r" % (k, r))
            if r.status == 202:
                check(n == 330, "body %d answered 202 is stored" % k)
            else:
                check(r.json["error"] == "shutting_down" and n == 0,
                      "body %d answered 503 is not stored: %r" % (k, r))


def test_source_counts_from_threads():
    """Per-source record counts made on the threads reach /metrics as on the loop: a
    large array of alerts naming 100 sources (past the 64 series of their own) and a
    small one naming 100 more: every record counted once, the first 64 sources with a
    series each and the rest in one "other" series, never two series of one name."""
    with Daemon("offload-counts", 'intake = { listen = "127.0.0.1:0", parse_threads = 2 }') as d:
        d.start()
        pad = "x" * 200
        big = [{"source": "s%03d" % i, "source_id": "b%d" % i, "title": pad} for i in range(100)]
        small = [{"source": "t%03d" % i, "source_id": "c%d" % i} for i in range(100)]
        check(len(json.dumps(big)) > 16384 > len(json.dumps(small)), "one large, one small")
        for body in (big, small):
            r = d.post(body)
            check(r.status == 202 and r.json["accepted"] == 100, "posted: %r" % r)
        text = d.get("/metrics").body.decode()
        series = [line.rpartition(" ")[0] for line in text.splitlines()
                  if line.startswith("kagari_intake_records_total{")]
        check(len(series) == len(set(series)), "no series twice: %r" % series)
        m = d.metrics()
        own = [k for k in series if 'result="normalized"' in k and 'source="other"' not in k]
        check(len(own) == 64, "64 sources of their own: %d" % len(own))
        total = sum(m[k] for k in series if 'result="normalized"' in k)
        check(total == 200, "every record counted once: %r" % total)
        check(m['kagari_intake_records_total{source="other",result="normalized"}'] == 136,
              "the rest in other")
        check(m['kagari_intake_parsed_total{where="thread"}'] == 1 and
              m['kagari_intake_parsed_total{where="loop"}'] == 1, "one on each side")


def test_json_lines_on_threads():
    """A large JSON Lines body (records of an archived diagnostic log, CRLF and LF ends,
    one line not JSON, one not understood) parsed on a thread: the others stored with
    their own line's bytes as raw, the two left out with their index and line number."""
    with Daemon("offload-lines", 'intake = { listen = "127.0.0.1:0", parse_threads = 2 }') as d:
        d.start()
        recs = signins(40, "l")
        lines = [json.dumps(r, separators=(",", ":")) for r in recs]
        lines.insert(7, '{"records": tru')
        lines.insert(20, json.dumps(BAD[1][0]))
        body = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines))
        check(len(body) > BIG, "a large body")
        r = d.post(raw=body.encode(), content_type="application/x-ndjson")
        check(r.status == 202 and r.json["accepted"] == 40, "lines: %r" % r)
        rej = r.json["rejected"]
        check([x["index"] for x in rej] == [7, 20], "left out: %r" % rej)
        check("line 8" in rej[0]["error"] and "line 21" in rej[1]["error"] and
              "status.errorCode" in rej[1]["error"], "reasons: %r" % rej)
        raws = {}
        for (raw,) in d.query("SELECT raw FROM alerts UNION ALL SELECT raw FROM events"):
            raws[json.loads(raw)["properties"]["id"]] = raw
        for i, rec in enumerate(recs):
            check(raws.get(rec["properties"]["id"]) == json.dumps(rec, separators=(",", ":")),
                  "line %d's raw" % i)
        m = d.metrics()
        check(m['kagari_intake_parsed_total{where="thread"}'] == 1, "parsed on a thread")
