"""A connector added by files alone (tests/plugin/xmlapi.c, linked into kagari-plugtest):
its settings block, per-tenant credential, API-key header, form body carrying XML, XML
error envelope, rate limits and retries all come from its own descriptor through the
plug-in API; the effect driver journals and replays it like the built-in connectors."""

import contextlib
import json
import os

import harness
from connhelp import PRELUDE, effects, expect_fail, expect_ok, lua_str, outputs
from harness import Daemon, TestFailure, check, expect_accepted, playbook, wait_for
from mockctl import PANOS_KEY, MockServer


@contextlib.contextmanager
def plugtest_binary():
    """Run the daemon and CLI of this test from kagari-plugtest."""
    saved = harness.kagari
    harness.kagari = lambda: os.path.join(harness.BUILD, "kagari-plugtest")
    try:
        yield
    finally:
        harness.kagari = saved


class PlugEnv:
    """A mock and a kagari-plugtest daemon whose tenant t1 has an xmlapi block."""

    def __init__(self, name, body, key=PANOS_KEY, dry_run=False, block=True):
        self.name, self.body, self.key = name, body, key
        self.dry_run, self.block = dry_run, block
        self.m = self.d = None
        self.seq = 0
        self._bin = plugtest_binary()

    def __enter__(self):
        self._bin.__enter__()
        self.m = MockServer()
        self.m.__enter__()
        try:
            block = ("xmlapi = { url = %s, api_key = %s }," % (lua_str(self.m.base_url),
                                                               lua_str(self.key))
                     if self.block else "")
            cfg = ("connectors = { ca_file = %s, max_attempts = 3, timeout = \"10s\" }\n"
                   "tenants = { t1 = { dry_run = %s, %s } }\n"
                   % (lua_str(self.m.ca_file), "true" if self.dry_run else "false", block))
            self.d = Daemon("plug-%s" % self.name, config_extra=cfg)
            self.d.write_playbook("fw.lua", playbook("fw", "it.plug", PRELUDE + self.body))
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
            try:
                self.m.__exit__(etype, None, None)
            finally:
                self._bin.__exit__(None, None, None)
        return False

    def post(self, raw=None):
        self.seq += 1
        a = {"source": "it.plug", "source_id": "plug-%s-%d" % (self.name, self.seq)}
        a.update(raw or {})
        return expect_accepted(self.d.post(a), 1)[0]

    def fire(self, raw=None, state="done", timeout=30):
        run = self.d.wait_run_final(self.post(raw), timeout=timeout)
        journal = self.d.run_show(run["id"])["journal"]
        check(state is None or run["state"] == state,
              "run is %s (%s), expected %s; journal %s"
              % (run["state"], run.get("error"), state, json.dumps(journal)[:2000]))
        return outputs(journal), run, journal


TAG_AND_LIST = """
    rec("tag", xmlapi.tag(alert.raw.ip, alert.raw.tag))
    rec("list", xmlapi.tagged())
"""


def test_plugin_connector_tags_and_lists():
    """xmlapi.tag registers the mapping at the mock (one User-ID request, with the API key
    header), xmlapi.tagged reads it back from the XML listing, and the journal records
    the form body as a JSON string with its format named."""
    with PlugEnv("tag", TAG_AND_LIST) as env:
        out, run, journal = env.fire({"ip": "192.0.2.9", "tag": "soar-block"})
        check(expect_ok(out, "tag") is True, "tag: %r" % out["tag"])
        listed = expect_ok(out, "list")
        check(any(e["ip"] == "192.0.2.9" and "soar-block" in e["tags"] for e in listed),
              "listing: %r" % listed)
        regs = env.m.registered_ips()
        regs = regs.get("value", regs) if isinstance(regs, dict) else regs
        check(any(r["ip"] == "192.0.2.9" and any(t["name"] == "soar-block" for t in r["tags"])
                  for r in regs), "mock registrations: %r" % regs)
        check(env.m.counters()["panos"]["user-id"] == 1, "counters %r" % env.m.counters())
        check(env.m.counters()["panos"]["denied"] == 0, "the key was refused")
        tag = effects(journal, "xmlapi.tag")
        check(len(tag) == 1 and tag[0]["status"] == "done", "journal: %r" % tag)
        req = tag[0]["request"]
        check(req["method"] == "POST" and req["url"] == env.m.base_url + "/api/"
              and req.get("format") == "form" and isinstance(req["body"], str)
              and req["body"].startswith("type=user-id&cmd=%3Cuid-message%3E"),
              "journaled request: %r" % req)
        check(PANOS_KEY not in json.dumps(journal), "the API key reached the journal")


def test_plugin_connector_escapes_xml():
    """A tag with XML's special characters arrives at the firewall as written: the
    connector escapes it in the document and percent-encodes the form field."""
    tag = "a<b>&'\"c"
    with PlugEnv("esc", TAG_AND_LIST) as env:
        out, _, _ = env.fire({"ip": "192.0.2.10", "tag": tag})
        expect_ok(out, "tag")
        listed = expect_ok(out, "list")
        check(any(e["ip"] == "192.0.2.10" and e["tags"] == [tag] for e in listed),
              "listing: %r" % listed)


def test_plugin_connector_error_envelope():
    """A refused key: HTTP 403 with the XML envelope; the playbook gets the envelope's
    code and message through the vendor-neutral call core, and the run goes on."""
    with PlugEnv("badkey", TAG_AND_LIST, key="not-the-key") as env:
        out, _, _ = env.fire({"ip": "192.0.2.11", "tag": "t"})
        expect_fail(out, "tag", "xmlapi.tag", "HTTP 403", "403: Invalid Credential")
        expect_fail(out, "list", "xmlapi.tagged", "Invalid Credential")
        check(env.m.registered_ips() in ([], {"value": []}), "a refused call registered")


def test_plugin_connector_retries_and_dry_run():
    """A 503 from the firewall is retried by the call core (the API's limits and
    backoff apply to a plug-in as to any connector); in a dry run nothing is sent and the
    playbook gets the recorded request."""
    with PlugEnv("retry", TAG_AND_LIST) as env:
        env.m.fault("/api/", status=503, count=1)
        out, _, _ = env.fire({"ip": "192.0.2.12", "tag": "t"})
        expect_ok(out, "tag")
        check(env.m.counters()["panos"]["user-id"] == 1, "counters %r" % env.m.counters())
    with PlugEnv("dry", TAG_AND_LIST, dry_run=True) as env:
        out, _, _ = env.fire({"ip": "192.0.2.13", "tag": "t"})
        v = expect_ok(out, "tag")
        check(v.get("dry_run") is True and v["request"].get("format") == "form", "dry: %r" % v)
        check(env.m.counters()["panos"]["user-id"] == 0, "a dry run reached the mock")


def test_plugin_connector_xml_body_journaled():
    """A raw XML body (quotes, angle brackets, a newline, non-ASCII) is sent as
    application/xml and journaled as a JSON string with "format": "xml", so the entry stays
    valid JSON; the API's refusal comes back from its XML envelope."""
    doc = '<uid-message a="1">\n  <x>\u00e9 & "q"</x>\n</uid-message>'
    body = 'rec("raw", xmlapi.post_xml(alert.raw.doc))\n'
    with PlugEnv("xmlbody", body) as env:
        out, _, journal = env.fire({"doc": doc})
        expect_fail(out, "raw", "xmlapi.post_xml", "HTTP 400", "400:")
        e = effects(journal, "xmlapi.post_xml")
        check(len(e) == 1, "journal %r" % journal)
        req = e[0]["request"]
        check(req.get("format") == "xml" and req["body"] == doc, "journaled request %r" % req)
        hits = [x for x in env.m.log_entries(50, "/api/") if x["method"] == "POST"]
        check(len(hits) == 1, "requests at the mock: %r" % hits)


def test_plugin_connector_not_configured():
    """A tenant without the connector's block gets the connector's own message."""
    with PlugEnv("nocfg", TAG_AND_LIST, block=False) as env:
        out, _, _ = env.fire({"ip": "192.0.2.14", "tag": "t"})
        expect_fail(out, "tag", "no xmlapi block is configured")


def test_plugin_connector_replayed_after_kill9():
    """kill -9 while the run sleeps after its xmlapi.tag: after the restart the run is
    replayed from its journal, the tag call returns its recorded result without reaching
    the firewall again, and the run completes."""
    body = TAG_AND_LIST + """
    sleep(3)
    rec("after", xmlapi.tagged())
"""
    with PlugEnv("crash", body) as env:
        aid = env.post({"ip": "192.0.2.15", "tag": "soar-block"})

        def sleeping():
            rs = env.d.runs_of_alert(aid)
            j = env.d.run_show(rs[0]["id"])["journal"] if len(rs) == 1 else []
            return j if any(e["kind"] == "sleep" for e in j) else None
        wait_for(sleeping, 20, "the run asleep after its tag call")
        check(env.m.counters()["panos"]["user-id"] == 1, "counters %r" % env.m.counters())
        env.d.kill9()
        env.d.restart()
        run = env.d.wait_run_final(aid, timeout=30)
        check(run["state"] == "done", "run %s (%s)" % (run["state"], run.get("error")))
        journal = env.d.run_show(run["id"])["journal"]
        out = outputs(journal)
        expect_ok(out, "tag")
        expect_ok(out, "after")
        check(env.m.counters()["panos"]["user-id"] == 1,
              "the tag was sent again on replay: %r" % env.m.counters())
        check(len(effects(journal, "xmlapi.tag")) == 1, "journal %r" % journal)


def expect_refused(name, config_extra, words):
    """kagari (without the test plug-ins) must refuse config_extra, saying words."""
    d = Daemon(name, config_extra=config_extra)
    try:
        try:
            d.start(timeout=15)
        except TestFailure as e:
            check(words in str(e), "message: %s" % e)
        else:
            d.stop()
            raise TestFailure("kagari started with %r" % config_extra)
    finally:
        d.__exit__(None, None, None)


def test_core_binary_refuses_the_plugin_block():
    """The block belongs to the plug-in: kagari without it refuses the setting, naming
    its path and line, as for any unknown setting."""
    expect_refused("plug-core", "tenants = { t1 = { xmlapi = { url = \"x\" } } }\n",
                   "tenants.t1.xmlapi: unknown setting")


class LineClient:
    """A TCP client of linesrc: one line sent, one answer read."""

    def __init__(self, port):
        import socket
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def send(self, line):
        self.s.sendall(line if isinstance(line, bytes) else line.encode() + b"\n")
        return self.f.readline().decode().rstrip("\n")

    def close(self):
        self.f.close()
        self.s.close()


def _line_port(d):
    import re
    m = re.search(r"event=serve\.ready\b.*\blinesrc_port=(\d+)", d.log())
    check(m is not None, "no linesrc_port= on the ready line: %r" % d.log()[-2000:])
    return int(m.group(1))


def test_plugin_source_admits_text_lines():
    """An intake source added by files alone (tests/plugin/linesrc.c): its own top-level
    block and listener, a normalizer of text lines, and the shared admit step: each good
    line is stored and answered with its id after the commit, routed to the playbooks it
    triggers; a bad line is rejected with a reason and the next one is accepted; a line
    seen before is a duplicate."""
    cfg = 'linesrc = { listen = "127.0.0.1:0", tenant = "t1" }\n'
    with plugtest_binary():
        d = Daemon("plug-lines", config_extra=cfg)
        try:
            d.write_playbook("line.lua", playbook(
                "line", "it.line", '    log.info("LINE " .. alert.title .. " " .. alert.severity)\n'))
            d.start()
            c = LineClient(_line_port(d))
            try:
                first = c.send("it.line|l-1|hello there|high")
                check(first.startswith("ok "), "answer %r" % first)
                aid = int(first.split()[1])
                for bad, why in (("no bars at all", "expected source|source_id"),
                                 ("Bad Source|x|t|low", "source:"),
                                 ("it.line||t|low", "source_id"),
                                 ("it.line|x|t|catastrophic", "severity"),
                                 ("it.line|x|" + "t" * 5000 + "|low", "too long")):
                    ans = c.send(bad)
                    check(ans.startswith("error ") and why in ans, "%r -> %r" % (bad[:40], ans))
                second = c.send("it.line|l-2|next one|low")
                check(second.startswith("ok "), "after bad lines: %r" % second)
                dup = c.send("it.line|l-1|hello there|high")
                check(dup == "dup %d" % aid, "duplicate: %r" % dup)
            finally:
                c.close()
            run = d.wait_run_final(aid, timeout=20)
            check(run["state"] == "done", "run %r" % run)
            journal = d.run_show(run["id"])["journal"]
            check(any(e["kind"] == "log" and "LINE hello there high" in json.dumps(e["request"])
                      for e in journal), "journal %r" % journal)
            d.stop()
        finally:
            d.__exit__(None, None, None)


def test_core_binary_refuses_the_source_block():
    """A top-level block belongs to its source: kagari without it refuses the setting."""
    expect_refused("plug-core-src", 'linesrc = { listen = "127.0.0.1:0" }\n',
                   "linesrc: unknown setting")
