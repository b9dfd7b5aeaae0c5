#!/usr/bin/env python3
"""make bench: throughput and latency figures of the intake and of playbook runs.

Starts the release daemon on loopback in a temporary folder and loads it from separate
processes (wrk for throughput, a paced Python client for latency). Prints figures; it
never passes or fails on them. Usage: bench.py path/to/kagari [seconds]"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

KAGARI = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/rel/kagari")
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
PARKED = int(os.environ.get("KAGARI_BENCH_PARKED", "100000"))

PLAYBOOK = """
return playbook {
  name = "bench-trivial",
  on = { source = "bench.run" },
  run = function(alert)
    log.info("seen", alert.source_id)
  end,
}
"""

PARK_PLAYBOOK = """
return playbook {
  name = "bench-park",
  on = { source = "bench.park" },
  run = function(alert)
    sleep(3600)
  end,
}
"""

WRK_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1000000000))
end
request = function()
  counter = counter + 1
  local items = {}
  for i = 1, BATCH do
    items[i] = '{"source":"bench.intake","source_id":"' .. prefix .. '-' .. counter .. '-' .. i ..
      '","title":"benchmark alert","severity":"low","observables":[{"type":"ip","value":"192.0.2.7"}]}'
  end
  local body = items[1]
  if BATCH > 1 then body = "[" .. table.concat(items, ",") .. "]" end
  return wrk.format("POST", "/api/v1/alerts",
    { ["Authorization"] = "Bearer TOKEN", ["Content-Type"] = "application/json" }, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class Daemon:
    def __init__(self, root):
        self.root = root
        pb = os.path.join(root, "playbooks")
        os.makedirs(pb)
        with open(os.path.join(pb, "bench.lua"), "w") as f:
            f.write(PLAYBOOK)
        with open(os.path.join(pb, "park.lua"), "w") as f:
            f.write(PARK_PLAYBOOK)
        out = subprocess.run([KAGARI, "init", "--config", os.path.join(root, "kagari.conf.lua"),
                              "--data", "data", "--playbooks", "playbooks", "--listen",
                              "127.0.0.1:0", "--tenant", "bench"],
                             check=True, capture_output=True, text=True).stdout
        self.token = re.search(r"intake token \(shown once\): (\S+)", out).group(1)
        # The daemon logs to a file: a pipe drained by a busy Python thread could fill
        # up and stall the daemon's writes, which would show up as engine latency.
        self.logpath = os.path.join(root, "serve.log")
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen([KAGARI, "serve", "--config",
                                      os.path.join(root, "kagari.conf.lua")],
                                     stderr=self.log)
        self.port = None
        deadline = time.time() + 10
        while time.time() < deadline and self.port is None:
            with open(self.logpath) as f:
                m = re.search(r"event=serve\.ready .*port=(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("daemon did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def runs(self, state):
        out = subprocess.run([KAGARI, "runs", "--config", os.path.join(self.root, "kagari.conf.lua"),
                              "--state", state, "--limit", "100000000", "--json"],
                             check=True, capture_output=True, text=True).stdout
        return len(json.loads(out))


def wrk(d, batch, connections, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT.replace("BATCH", str(batch)).replace("TOKEN", d.token))
        script = f.name
    try:
        out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency",
                              "-s", script, "http://127.0.0.1:%d" % d.port],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script)
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) non2xx=(\d+) errors=(\d+) "
                  r"p50_us=(\d+) p99_us=(\d+)", out)
    if not m:
        raise RuntimeError("wrk printed no result:\n" + out)
    req, dur, non2xx, errs, p50, p99 = map(int, m.groups())
    return req / (dur / 1e6), req, non2xx, errs, p50, p99


def paced_latency(d, rate, seconds, nthreads=4):
    """Send `rate` single-alert requests per second (each triggering the trivial playbook)
    over nthreads keep-alive connections; return sorted latencies in ms."""
    lat = []
    lock = threading.Lock()
    per = rate / nthreads
    errors = [0]

    def worker(n):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        hdrs = {"Authorization": "Bearer " + d.token, "Content-Type": "application/json"}
        start = time.perf_counter()
        i = 0
        mine = []
        while True:
            due = start + i / per
            now = time.perf_counter()
            if due - start >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            body = json.dumps({"source": "bench.run", "source_id": "p%d-%d" % (n, i),
                               "title": "latency probe", "severity": "medium"})
            t0 = time.perf_counter()
            c.request("POST", "/api/v1/alerts", body, hdrs)
            r = c.getresponse()
            r.read()
            t1 = time.perf_counter()
            if r.status != 202:
                errors[0] += 1
            mine.append((t1 - t0) * 1000)
            i += 1
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    return lat, errors[0]


def ack_histogram(d):
    """The daemon's own ack latency histogram: {upper bound in s: cumulative count}."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    h = {}
    for m in re.finditer(r'kagari_intake_ack_seconds_bucket\{le="([^"]+)"\} (\d+)', text):
        h[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
    return h


def hist_pct(before, after, p):
    """Upper bound of the bucket holding the p-th percentile of what happened between
    two snapshots."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0)
    if total == 0:
        return float("nan")
    for b in bounds:
        if after[b] - before.get(b, 0) >= total * p / 100:
            return b
    return float("inf")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(d, name):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else float("nan")


def parked_runs(d, n, batch=1000):
    """Post n alerts whose runs park in sleep(3600); return (runs parked, KiB per run)."""
    before = rss_kib(d.proc.pid)
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    hdrs = {"Authorization": "Bearer " + d.token, "Content-Type": "application/json"}
    for b in range(0, n, batch):
        body = json.dumps([{"source": "bench.park", "source_id": "park-%d" % i, "title": "park"}
                           for i in range(b, min(n, b + batch))])
        while True:
            c.request("POST", "/api/v1/alerts", body, hdrs)
            r = c.getresponse()
            r.read()
            if r.status == 202:
                break
            time.sleep(0.2)  # 503: the engine sheds load while runs start; retry
    deadline = time.time() + 300
    while time.time() < deadline and metric(d, "kagari_runs_ready") > 0:
        time.sleep(0.5)
    time.sleep(1)
    active = metric(d, "kagari_runs_active")
    after = rss_kib(d.proc.pid)
    return int(active), (after - before) / max(1, n)


def pct(v, p):
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")


def main():
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (make deps)")
    root = tempfile.mkdtemp(prefix="kagari-bench-")
    d = Daemon(root)
    try:
        print("kagari bench: %s, %d s per figure, 2 cores, loopback" % (KAGARI, SECONDS))
        rps, req, non2xx, errs, p50, p99 = wrk(d, 1, 64, SECONDS)
        print("intake single alert : %8.0f requests/s (%d requests, %d non-2xx, %d socket errors; "
              "p50 %.2f ms, p99 %.2f ms)" % (rps, req, non2xx, errs, p50 / 1000, p99 / 1000))
        rps, req, non2xx, errs, p50, p99 = wrk(d, 100, 16, SECONDS)
        print("intake batch of 100 : %8.0f alerts/s   (%d requests, %d non-2xx, %d socket errors; "
              "p50 %.2f ms, p99 %.2f ms)" % (rps * 100, req, non2xx, errs, p50 / 1000, p99 / 1000))
        h0 = ack_histogram(d)
        lat, errors = paced_latency(d, 1000, SECONDS)
        h1 = ack_histogram(d)
        done = d.runs("done")
        print("POST -> run finished at 1,000 alerts/s (trivial playbook): p50 %.2f ms, p99 %.2f ms, "
              "max %.2f ms (%d requests, %d errors; %d runs done)"
              % (pct(lat, 50), pct(lat, 99), lat[-1] if lat else 0, len(lat), errors, done))
        print("  engine side (request received -> run finished and committed -> 202 sent): "
              "p50 <= %.2f ms, p99 <= %.2f ms (histogram bucket bounds)"
              % (hist_pct(h0, h1, 50) * 1000, hist_pct(h0, h1, 99) * 1000))
        print("  (a 202 is sent after the commit that also holds the run's end, so POST->202 is "
              "POST->run finished for a playbook that does not wait; the client figures include "
              "the Python client's own overhead)")
        n, per = parked_runs(d, PARKED)
        print("parked runs         : %d runs parked in sleep(); resident memory %.1f KiB per "
              "parked run (daemon RSS growth / runs)" % (n, per))
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
