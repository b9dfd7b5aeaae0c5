"""Syslog intake over real sockets on loopback: PAN-OS THREAT lines over TCP become alerts
that start playbook runs, TRAFFIC lines over UDP become events a playbook finds with
events.query, octet-counted RFC 5424 over TLS and newline-framed RFC 3164 over TCP both
arrive, the tenant's rule turns chosen records into events, an unknown sender is dropped
and counted, and a garbled connection does not hold back another."""

import json
import os
import re
import socket
import ssl
import subprocess
import time

from harness import Daemon, check, playbook, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")


def fixture_lines(name):
    with open(os.path.join(FIX, name), "rb") as f:
        return [l for l in f.read().split(b"\n") if l]


def make_cert(folder):
    key = os.path.join(folder, "sl-key.pem")
    cert = os.path.join(folder, "sl-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return cert, key


def ports(d):
    out = {}
    for proto in ("udp", "tcp", "tls"):
        m = re.search(r"\bsyslog_%s=(\d+)" % proto, d.log())
        if m:
            out[proto] = int(m.group(1))
    return out


def syslog_daemon(name, listen, extra="", tls=False, tenants=""):
    d = Daemon(name)
    conf = {"listen": listen}
    lines = ["syslog = {", "  listen = { %s }," % ", ".join(json.dumps(l) for l in listen),
             "  utc_offset = \"+09:00\","]
    if tls:
        cert, key = make_cert(d.dir)
        lines.append("  tls_cert = %s, tls_key = %s," % (json.dumps(cert), json.dumps(key)))
        d.tls_cert = cert
    lines.append(extra)
    lines.append("}")
    if tenants:
        lines.append(tenants)
    with open(d.config, "a") as f:
        f.write("\n" + "\n".join(lines) + "\n")
    del conf
    return d


def send_tcp(port, data, tls_ca=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls_ca is not None:
        ctx = ssl.create_default_context(cafile=tls_ca)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(data)
    s.close()


def send_udp(port, lines):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for l in lines:
        s.sendto(l, ("127.0.0.1", port))
    s.close()


def count(d, table, where="1=1", args=()):
    return d.query("SELECT count(*) FROM %s WHERE %s" % (table, where), args)[0][0]


QUERY_PB = """
    local ip = alert:observable("ip")
    local hits = events.query{ ip = "10.10.5.12", since = "3650d" }
    local n = events.count{ source = "panos.traffic", since = "3650d" }
    log.info("traffic", #hits, n, hits[1] and hits[1].source or "none",
             hits[1] and hits[1].dst_ip or "none")
"""


def test_threat_over_tcp_starts_run_and_traffic_is_queryable():
    d = syslog_daemon("sl-run", ["udp 127.0.0.1:0 t1", "tcp 127.0.0.1:0 t1"])
    with d:
        d.write_playbook("c2.lua", playbook("c2", "panos.threat", QUERY_PB,
                                            extra_on=', min_severity = "high"'))
        d.start()
        p = ports(d)
        check("udp" in p and "tcp" in p, "no syslog ports in the ready line: %s" % d.log())
        send_udp(p["udp"], fixture_lines("pan-os-traffic.log"))
        wait_for(lambda: count(d, "events", "source = 'panos.traffic'") == 6, 15,
                 "6 TRAFFIC events stored")
        check(count(d, "alerts") == 0, "TRAFFIC made alerts")
        threat = fixture_lines("pan-os-threat.log")
        send_tcp(p["tcp"], b"\n".join(threat) + b"\n")
        wait_for(lambda: count(d, "alerts", "source = 'panos.threat'") == 6, 15,
                 "6 THREAT alerts stored")
        c2 = d.query("SELECT id, severity, outcome FROM alerts WHERE source_id ="
                     " '013201009876/THREAT/7342110928840001296'")
        check(len(c2) == 1 and c2[0][1] == 3 and c2[0][2] == "succeeded",
              "the C2 beacon alert: %r" % c2)
        run = d.wait_run_final(c2[0][0])
        check(run["state"] == "done", "run %r" % run)
        journal = d.run_show(run["id"])["journal"]
        kinds = [e["kind"] for e in journal]
        check("events.query" in kinds and "events.count" in kinds, "journal kinds %r" % kinds)
        q = [e for e in journal if e["kind"] == "events.query"][0]
        text = json.dumps(q)
        check("panos.traffic" in text and "198.51.100.77" in text,
              "the query result does not hold the FS02 flow: %s" % text[:1000])
        check(re.search(r"msg=\"?traffic 2 6 panos.traffic", d.log()) is not None,
              "the playbook did not see 2 flows of 10.10.5.12 and 6 TRAFFIC events")
        # The duplicate line is stored once; the metrics count what arrived.
        send_udp(p["udp"], fixture_lines("pan-os-traffic.log")[:1])
        m = wait_for(lambda: (lambda v: v if v.get("kagari_events_duplicate_total", 0) >= 1
                              else None)(d.metrics()), 10, "the duplicate counted")
        check(m['kagari_syslog_messages_total{transport="udp"}'] == 7, "udp count %r" % m)
        check(m['kagari_syslog_messages_total{transport="tcp"}'] == 6, "tcp count %r" % m)
        check(count(d, "events") == 6, "the duplicate was stored twice")
        check("kagari_syslog_udp_kernel_drops_total" in m, "no UDP drop counter")
        # The events CLI finds the same rows.
        out = d.cli("events", "--ip", "10.10.5.12", "--since", "3650d", "--json").stdout
        rows = json.loads(out)
        check(len(rows) == 2 and all(r["source"] == "panos.traffic" for r in rows),
              "kagari events --ip: %s" % out[:500])
        out = d.cli("events", "--source", "panos.traffic", "--since", "3650d", "--limit", "3").stdout
        check(len([l for l in out.splitlines() if "panos.traffic" in l]) == 3,
              "kagari events table: %s" % out)
test_threat_over_tcp_starts_run_and_traffic_is_queryable.TIMEOUT = 90


def test_octet_counting_over_tls_and_newlines_over_tcp():
    d = syslog_daemon("sl-frame", ["tls 127.0.0.1:0 t1", "tcp 127.0.0.1:0 t1"], tls=True)
    with d:
        d.start()
        p = ports(d)
        with open(os.path.join(FIX, "pan-os-ietf-octet-tls.stream"), "rb") as f:
            stream = f.read()
        send_tcp(p["tls"], stream, tls_ca=d.tls_cert)
        # newline framing, split at awkward places, CR LF and a last line without LF
        lines = fixture_lines("pan-os-globalprotect.log") + fixture_lines("pan-os-config.log")
        data = b"\r\n".join(lines)
        s = socket.create_connection(("127.0.0.1", p["tcp"]), timeout=10)
        for i in range(0, len(data), 97):
            s.sendall(data[i:i + 97])
            time.sleep(0.002)
        s.close()
        wait_for(lambda: count(d, "events") + count(d, "alerts") == 3 + 7, 15,
                 "3 frames over TLS and 7 lines over TCP stored")
        check(count(d, "alerts", "source = 'panos.threat'") == 1, "the TLS C2 frame is an alert")
        check(count(d, "events", "source = 'panos.globalprotect'") == 4, "4 GlobalProtect events")
        check(count(d, "alerts", "source = 'panos.config'") == 1,
              "the unauthorized config edit is an alert")
        ev = d.query("SELECT time FROM events WHERE source = 'panos.traffic'")
        check(ev == [(1715646700114,)], "the octet-counted TRAFFIC frame's time: %r" % ev)


def test_tenant_rule_and_unknown_sender():
    d = syslog_daemon(
        "sl-rule", ["udp 127.0.0.1:0", "tcp 127.0.0.1:0"],
        extra='  senders = { "10.99.0.0/16 t1", "127.0.0.2 t1" }, max_conns_per_peer = 2,',
        tenants='tenants = { t1 = { events = { retention = "3650d", alerts = {'
                ' "!panos.threat category=scan", "panos.traffic outcome=succeeded'
                ' severity>=high", "default" } } } }')
    with d:
        d.start()
        p = ports(d)
        # 127.0.0.1 is no sender of any tenant: dropped and counted over both transports.
        send_udp(p["udp"], fixture_lines("pan-os-threat.log"))
        try:
            send_tcp(p["tcp"], b"\n".join(fixture_lines("pan-os-threat.log")) + b"\n")
        except OSError:
            pass
        m = wait_for(lambda: (lambda v: v if v.get("kagari_syslog_unknown_sender_total", 0) >= 7
                              else None)(d.metrics()), 10, "unknown senders counted")
        check(count(d, "alerts") == 0 and count(d, "events") == 0, "an unknown sender was stored")
        check("syslog.unknown_sender" in d.log(), "the unknown sender was not logged")
        # 127.0.0.2 maps to t1: the scan line is an event by the tenant's rule.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.2", 0))
        for l in fixture_lines("pan-os-threat.log"):
            s.sendto(l, ("127.0.0.1", p["udp"]))
        s.close()
        wait_for(lambda: count(d, "alerts") == 5 and count(d, "events") == 1, 10,
                 "5 alerts and the scan as an event")
        check(count(d, "events", "category = 'scan'") == 1, "the scan is not the event")
        # connections per peer: the third from one address is refused
        conns = [socket.create_connection(("127.0.0.1", p["tcp"]), timeout=5,
                                          source_address=("127.0.0.2", 0)) for _ in range(3)]
        wait_for(lambda: d.metrics().get("kagari_syslog_connections_refused_total", 0) >= 1, 10,
                 "the third connection of one peer refused")
        for c in conns:
            c.close()
        del m


def test_garbled_connection_does_not_stall_another():
    d = syslog_daemon("sl-garbled", ["tcp 127.0.0.1:0 t1"], extra='  max_message = "4KiB",')
    with d:
        d.start()
        p = ports(d)
        bad = socket.create_connection(("127.0.0.1", p["tcp"]), timeout=10)
        # garbage lines, NULs, bad UTF-8, an over-long line, truncated records
        bad.sendall(b"<14>not pan-os\n\x00\x00\x00\n\xff\xfe garbage\n" + b"A" * 10000 + b"\n"
                    + b"1,2024/05/14 10:00:00,0132,THREAT,url\n")
        bad.sendall(b"<14>May 14 10:00:00 h 1,2024/05/14 10")  # no end: the peer stalls
        good = socket.create_connection(("127.0.0.1", p["tcp"]), timeout=10)
        good.sendall(b"\n".join(fixture_lines("pan-os-system.log")) + b"\n")
        wait_for(lambda: count(d, "events") + count(d, "alerts") == 3, 10,
                 "the good connection's 3 lines stored while the other is stalled")
        m = d.metrics()
        check(m.get("kagari_syslog_garbled_total", 0) >= 4, "garbled lines counted: %r" % m)
        check(m.get("kagari_syslog_oversize_total", 0) >= 1, "the over-long line counted")
        check("syslog.garbled" in d.log(), "garbled lines not logged")
        # a broken octet count closes that connection only
        oc = socket.create_connection(("127.0.0.1", p["tcp"]), timeout=10)
        oc.sendall(b"12x <14>bad")
        wait_for(lambda: d.metrics().get("kagari_syslog_framing_errors_total", 0) == 1, 10,
                 "the framing error counted")
        check(oc.recv(10) == b"", "the broken connection stays open")
        good.sendall(b"\n".join(fixture_lines("pan-os-config.log")) + b"\n")
        wait_for(lambda: count(d, "events") + count(d, "alerts") == 6, 10,
                 "the good connection goes on")
        for s in (bad, good, oc):
            s.close()


def traffic_for(ip_line, seqs):
    """Copies of a TRAFFIC fixture line with other sequence numbers (new records)."""
    out = []
    for s in seqs:
        out.append(re.sub(rb",7342110928840\d+,0x", b",%d,0x" % s, ip_line, count=1))
    return out


REPLAY_PB = """
    local n = events.count{ ip = "10.10.5.12", since = "3650d" }
    sleep(3)
    log.info("replayed count", n)
"""


def test_events_query_is_replayed_from_the_journal():
    """A run that counted events, killed -9 while it sleeps, sees the same count after the
    restart although more events arrived meanwhile: the result is in its journal."""
    d = syslog_daemon("sl-replay", ["udp 127.0.0.1:0 t1", "tcp 127.0.0.1:0 t1"])
    with d:
        d.write_playbook("c2.lua", playbook("count", "panos.threat", REPLAY_PB,
                                            extra_on=', min_severity = "high"'))
        d.start()
        p = ports(d)
        fs02 = fixture_lines("pan-os-traffic.log")[4]
        send_udp(p["udp"], fixture_lines("pan-os-traffic.log"))
        wait_for(lambda: count(d, "events") == 6, 10, "6 events")
        send_tcp(p["tcp"], fixture_lines("pan-os-threat.log")[1] + b"\n")
        aid = wait_for(lambda: (d.query("SELECT id FROM alerts") or [None])[0], 10, "the alert")[0]
        d.wait_run_state(aid, "waiting")
        d.kill9()
        d.restart()
        p = ports(d)
        send_udp(p["udp"], traffic_for(fs02, range(100, 105)))
        wait_for(lambda: count(d, "events") == 11, 10, "5 more events of 10.10.5.12")
        run = d.wait_run_final(aid, timeout=30)
        check(run["state"] == "done", "run %r" % run)
        check(re.search(r"msg=\"?replayed count 2", d.log()) is not None,
              "the replayed count is not the recorded 2: %s" % d.log()[-2000:])
        counts = [e for e in d.run_show(run["id"])["journal"] if e["kind"] == "events.count"]
        check(len(counts) == 1, "events.count journaled once: %r" % counts)


def test_locked_store_keeps_and_retries_lines():
    """While another process holds the tenant database's write lock, lines that arrive are
    kept (events by the admit step, alerts by the listener) and stored once it is gone."""
    import sqlite3
    d = syslog_daemon("sl-locked", ["tcp 127.0.0.1:0 t1"])
    with d:
        d.start()
        p = ports(d)
        send_tcp(p["tcp"], fixture_lines("pan-os-system.log")[1] + b"\n")  # creates the db
        wait_for(lambda: count(d, "events") == 1, 10, "the first event")
        lock = sqlite3.connect(d.db_path(), timeout=1, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            fs02 = fixture_lines("pan-os-traffic.log")[4]
            lines = traffic_for(fs02, range(1000, 1050)) + fixture_lines("pan-os-threat.log")[:2]
            send_tcp(p["tcp"], b"\n".join(lines) + b"\n")
            wait_for(lambda: d.metrics().get("kagari_events_retries_total", 0) >= 1, 10,
                     "a retried batch of events")
            m = d.metrics()
            check(m.get("kagari_syslog_lost_total", 0) == 0, "lines lost while locked: %r" % m)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_for(lambda: count(d, "events") == 51 and count(d, "alerts") == 2, 15,
                 "every line stored once the lock is gone")
        m = d.metrics()
        check(m.get("kagari_syslog_lost_total", 0) == 0, "lines lost: %r" % m)


def test_udp_kernel_drops_are_counted():
    """With the daemon stopped (SIGSTOP) a small UDP buffer overflows: after SIGCONT every
    datagram sent is either received or in the kernel's drop counter, read from the socket
    itself (no later datagram needed to carry it)."""
    import signal
    d = syslog_daemon("sl-udp-drops", ["udp 127.0.0.1:0 t1"], extra='  udp_buffer = "64KiB",')
    with d:
        d.start()
        p = ports(d)
        fs02 = fixture_lines("pan-os-traffic.log")[4]
        lines = traffic_for(fs02, range(5000, 7000))
        d.proc.send_signal(signal.SIGSTOP)
        try:
            send_udp(p["udp"], lines)
        finally:
            d.proc.send_signal(signal.SIGCONT)

        def settled():
            m = d.metrics()
            got = m['kagari_syslog_messages_total{transport="udp"}']
            drops = m["kagari_syslog_udp_kernel_drops_total"]
            return (got, drops) if got + drops == len(lines) else None
        got, drops = wait_for(settled, 15, "received + dropped == sent")
        check(drops > 0, "no drop counted with a full 64 KiB buffer (received %d)" % got)
        wait_for(lambda: count(d, "events") == got, 15, "every received datagram stored")


def test_udp_read_while_the_loop_is_stalled():
    """The loop stops for 3 s (as in a commit on a very slow disk: the test build's
    "stall" control request) while 4,000 datagrams arrive, far more than the 1 MiB receive
    buffer holds: the listener's receiver thread keeps draining the socket, so none is
    dropped by the kernel, and every one is stored once the loop is back."""
    import threading
    d = syslog_daemon("sl-udp-stall", ["udp 127.0.0.1:0 t1"], extra='  udp_buffer = "1MiB",',
                      tenants="testing = { clock = true }")
    with d:
        d.start()
        p = ports(d)
        fs02 = fixture_lines("pan-os-traffic.log")[4]
        lines = traffic_for(fs02, range(30000, 34000))
        reply = {}
        t = threading.Thread(target=lambda: reply.update(d.control("stall 3000", timeout=30)))
        t0 = time.monotonic()
        t.start()
        time.sleep(0.3)  # the loop is asleep now
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i, l in enumerate(lines):  # 4,000 in about 2 s, all during the stall
            s.sendto(l, ("127.0.0.1", p["udp"]))
            if i % 100 == 99:
                time.sleep(0.05)
        s.close()
        sent_by = time.monotonic() - t0
        t.join(30)
        check(reply.get("stalled_ms") == 3000, "the stall request: %r" % reply)
        check(sent_by < 3.0, "the datagrams were not all sent during the stall (%.1f s)" % sent_by)
        wait_for(lambda: count(d, "events") == len(lines), 20, "every datagram stored")
        m = d.metrics()
        check(m["kagari_syslog_udp_kernel_drops_total"] == 0,
              "datagrams dropped while the loop stalled: %r" % m["kagari_syslog_udp_kernel_drops_total"])
        check(m['kagari_syslog_messages_total{transport="udp"}'] == len(lines),
              "received %r of %d" % (m['kagari_syslog_messages_total{transport="udp"}'], len(lines)))
        check("testclock.stall ms=3000" in d.log(), "no log line for the stall")


def test_burst_stored_whole_and_in_order():
    """A burst of 20,000 TRAFFIC lines over one connection, closed at once, with garbled
    lines among them: the lines are parsed off the loop in many jobs, yet every good line
    is stored, in the order sent (ids follow the sequence numbers), the garbled ones are
    counted, nothing is lost, and a second connection's lines arrive meanwhile. Their
    commits (events alone) do not wait for the disk; all of them survive kill -9."""
    d = syslog_daemon("sl-burst", ["tcp 127.0.0.1:0 t1"])
    with d:
        d.start()
        p = ports(d)
        fs02 = fixture_lines("pan-os-traffic.log")[4]
        good = traffic_for(fs02, range(100000, 120000))
        lines = []
        for i, l in enumerate(good):
            lines.append(l)
            if i % 2000 == 1999:
                lines.append(b"<14>May 14 10:00:00 h not,a,pan-os,record")
        other = socket.create_connection(("127.0.0.1", p["tcp"]), timeout=10)
        send_tcp(p["tcp"], b"\n".join(lines) + b"\n")
        other.sendall(b"\n".join(traffic_for(fs02, range(200000, 200010))) + b"\n")
        other.close()
        wait_for(lambda: count(d, "events") == 20010, 120, "all 20,010 lines stored")
        rows = d.query("SELECT source_id FROM events WHERE source_id LIKE '%/TRAFFIC/1_____' "
                       "ORDER BY id")
        seqs = [int(r[0].rsplit("/", 1)[1]) for r in rows]
        check(seqs == list(range(100000, 120000)), "the burst's lines out of order or missing")
        m = d.metrics()
        check(m.get("kagari_syslog_garbled_total", 0) == 10, "garbled lines counted: %r" % m)
        check(m.get("kagari_syslog_lost_total", 0) == 0, "lines lost: %r" % m)
        check(m.get("kagari_events_stored_total", 0) == 20010, "events counted: %r" % m)
        # events alone commit without waiting for the disk, yet what was counted stored
        # survives the process being killed
        check(m.get("kagari_commits_unsynced_total", 0) > 0, "no unsynced commit: %r" % m)
        d.kill9()
        d.restart()
        check(count(d, "events") == 20010, "events lost by kill -9: %d" % count(d, "events"))


test_burst_stored_whole_and_in_order.TIMEOUT = 180


def test_idle_connection_closed():
    d = syslog_daemon("sl-idle", ["tcp 127.0.0.1:0 t1"], extra='  idle_timeout = "1s",')
    with d:
        d.start()
        p = ports(d)
        s = socket.create_connection(("127.0.0.1", p["tcp"]), timeout=10)
        s.sendall(fixture_lines("pan-os-system.log")[0] + b"\n")
        t0 = time.monotonic()
        check(s.recv(10) == b"", "the idle connection was not closed")
        waited = time.monotonic() - t0
        check(0.8 <= waited <= 5, "closed after %.1f s, expected about 1 s of silence" % waited)
        s.close()
        m = d.metrics()
        check(m.get("kagari_syslog_idle_closed_total") == 1, "idle close counted: %r" % m)
        check(count(d, "alerts") == 1, "the line sent before the silence was stored")


BAD_CONFIGS = [
    ('syslog = { listen = { "sctp 127.0.0.1:514" } }', "listen[1]"),
    ('syslog = { listen = { "udp 127.0.0.1" } }', "listen[1]"),
    ('syslog = { listen = { "udp 127.0.0.1:0 Not_A_Tenant" } }', "listen[1]"),
    ('syslog = { listen = { "tls 127.0.0.1:0" } }', "tls_cert and tls_key"),
    ('syslog = { senders = { "300.1.2.3 t1" } }', "senders[1]"),
    ('syslog = { senders = { "10.0.0.0/33 t1" } }', "prefix length"),
    ('syslog = { senders = { "10.0.0.1" } }', "senders[1]"),
    ('syslog = { utc_offset = "JST" }', "utc_offset"),
    ('syslog = { max_message = "1GiB" }', "max_message"),
    ('syslog = { listen = { 5 } }', "listen[1]"),
    ('tenants = { t1 = { events = { alerts = { "panos.threat severity>=urgent" } } } }',
     "alerts[1]"),
    ('tenants = { t1 = { events = { retention = "1m" } } }', "retention"),
]


def test_bad_settings_are_refused_with_their_place():
    d = Daemon("sl-badconf")
    with d:
        with open(d.config) as f:
            base = f.read()
        for text, want in BAD_CONFIGS:
            with open(d.config, "w") as f:
                f.write(base + "\n" + text + "\n")
            p = d.cli("events", check_rc=1)
            check("kagari.conf.lua:" in p.stderr and want in p.stderr,
                  "%s: expected a message naming %r, got %r" % (text, want, p.stderr))


def make_ca_and_client(folder):
    """A CA, a client certificate it signed, and one it did not (self-signed)."""
    def run(*args):
        subprocess.run(list(args), check=True, capture_output=True, timeout=30, cwd=folder)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=it-ca")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "fw-key.pem", "-out", "fw.csr", "-subj", "/CN=PA-5220-TKY01")
    run("openssl", "x509", "-req", "-in", "fw.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-out", "fw.pem", "-days", "2")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "rogue-key.pem", "-out", "rogue.pem", "-days", "2", "-subj",
        "/CN=rogue")
    return [os.path.join(folder, n) for n in ("ca.pem", "fw.pem", "fw-key.pem", "rogue.pem",
                                              "rogue-key.pem")]


def test_tls_client_certificates():
    """With syslog.tls_ca, only senders with a certificate of that CA get through."""
    d = syslog_daemon("sl-mtls", ["tls 127.0.0.1:0 t1"], tls=True)
    with d:
        ca, fw, fwkey, rogue, roguekey = make_ca_and_client(d.dir)
        with open(d.config, "a") as f:
            f.write('syslog.tls_ca = %s\n' % json.dumps(ca))
        d.start()
        p = ports(d)

        def send(cert, key, data, refused=True):
            ctx = ssl.create_default_context(cafile=d.tls_cert)
            if cert is not None:
                ctx.load_cert_chain(cert, key)
            s = socket.create_connection(("127.0.0.1", p["tls"]), timeout=10)
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            s.sendall(data)
            if refused:
                try:
                    s.recv(1)  # the server closes a refused client after the handshake
                except (ssl.SSLError, OSError):
                    pass
            s.close()

        for cert, key in ((None, None), (rogue, roguekey)):
            try:
                send(cert, key, fixture_lines("pan-os-system.log")[0] + b"\n")
            except (ssl.SSLError, OSError):
                pass
        send(fw, fwkey, fixture_lines("pan-os-config.log")[2] + b"\n", refused=False)
        wait_for(lambda: count(d, "alerts", "source = 'panos.config'") == 1, 10,
                 "the line of the certified sender")
        m = d.metrics()
        check(m.get("kagari_syslog_tls_errors_total", 0) >= 2, "refused clients counted: %r" % m)
        check(count(d, "alerts", "source = 'panos.system'") == 0,
              "a sender without a certificate of the CA was stored")


def test_tenant_rule_applies_to_the_http_intake():
    """The same per-tenant rule decides the class of records that arrive over the HTTP
    intake: a rule's "!" keeps one as an event (stored, no run), a rule makes another an
    alert, and "default" leaves the source's own class."""
    d = Daemon("sl-rule-http")
    with d:
        with open(d.config, "a") as f:
            f.write('\ntenants = { t1 = { events = { alerts = { "!it.quiet", '
                    '"it.loud outcome=blocked", "default" } } } }\n')
        for name in ("quiet", "loud", "plain"):
            d.write_playbook("%s.lua" % name, playbook(name, "it.%s" % name, '    log.info("x")'))
        d.start()
        with d.client() as c:
            for src, sid, cls in (("it.quiet", "q1", "alert"), ("it.loud", "l1", "event"),
                                  ("it.loud", "l2", "event"), ("it.plain", "p1", "event")):
                r = c.post({"source": src, "source_id": sid, "class": cls,
                            "outcome": "blocked" if sid == "l1" else "succeeded"})
                check(r.status == 202, "%s: %r" % (sid, r))
        rows = dict(d.query("SELECT source_id, class FROM alerts"))
        check(rows == {"l1": "alert"}, "alerts after the rule: %r" % rows)
        rows = sorted(x[0] for x in d.query("SELECT source_id FROM events"))
        check(rows == ["l2", "p1", "q1"], "events after the rule: %r" % rows)
        aid = d.query("SELECT id FROM alerts WHERE source_id = 'l1'")[0][0]
        check(d.wait_run_final(aid)["state"] == "done", "the alert's run")
        check(len(d.db_runs()) == 1, "runs of events: %r" % d.db_runs())
