"""kagari-mock's PAN-OS XML API (tests/mock/mock_panos.c): keygen, API keys, User-ID
register/unregister with tag timeouts, show object registered-ip, the messages devices
answer, malformed commands, XML escaping, fault injection, counters and control routes."""

import base64
import time
import urllib.parse
import xml.etree.ElementTree as ET

from harness import check
from mockctl import PANOS_KEY, PANOS_PASSWORD, PANOS_USER, MockServer, panos_key

SHOW_ALL = "<show><object><registered-ip><all/></registered-ip></object></show>"


def uid_cmd(*blocks, version="2.0"):
    """A uid-message. blocks: ("register" or "unregister", entries) in document order;
    an entry is (ip, tags[, persistent]) where a tag is a name or (name, timeout), and
    tags None leaves out the <tag> element."""
    root = ET.Element("uid-message")
    ET.SubElement(root, "version").text = version
    ET.SubElement(root, "type").text = "update"
    payload = ET.SubElement(root, "payload")
    for kind, entries in blocks:
        blk = ET.SubElement(payload, kind)
        for ent in entries:
            e = ET.SubElement(blk, "entry", {"ip": ent[0]})
            if len(ent) > 2:
                e.set("persistent", ent[2])
            if ent[1] is None:
                continue
            tag = ET.SubElement(e, "tag")
            for t in ent[1]:
                name, timeout = (t, None) if isinstance(t, str) else t
                mem = ET.SubElement(tag, "member")
                mem.text = name
                if timeout is not None:
                    mem.set("timeout", str(timeout))
    return ET.tostring(root, encoding="unicode")


def user_id(m, *blocks, **kw):
    return m.panos({"type": "user-id", "cmd": uid_cmd(*blocks, **kw)})


def expect_success(r, what):
    x = r.xml
    check(r.status == 200 and x is not None and x.tag == "response"
          and x.get("status") == "success", "%s: expected success, got %r" % (what, r))
    check(r.header("Content-Type").startswith("application/xml"), "%s: %r" % (what, r.headers))
    return x


def expect_envelope(r, status, code, msg=None, what=""):
    """HTTP status with <response status="error" code="code">; msg: the text of
    result/msg (HTTP 403/400 answers) or of msg/line (command errors)."""
    x = r.xml
    check(r.status == status and x is not None and x.get("status") == "error"
          and x.get("code") == str(code),
          "%s: expected %d code %s, got %r" % (what, status, code, r))
    text = x.findtext("./result/msg")
    if text is None:
        text = x.findtext("./msg/line")
    if msg is not None:
        check(text == msg, "%s: message %r, expected %r" % (what, text, msg))
    return text


def uid_errors(r, what):
    """The per-entry refusals of a user-id answer: [(register|unregister, ip, message)]."""
    x = r.xml
    check(r.status == 200 and x is not None and x.get("status") == "error"
          and x.find("./msg/line/uid-response/payload") is not None,
          "%s: expected a uid-response error, got %r" % (what, r))
    out = []
    for blk in x.find("./msg/line/uid-response/payload"):
        for e in blk.findall("entry"):
            out.append((blk.tag, e.get("ip"), e.get("message")))
    return out


def listed(m, cmd=SHOW_ALL, method="POST"):
    """{ip: [tags]} from type=op show object registered-ip (checking <count>)."""
    r = m.panos({"type": "op", "cmd": cmd}, method=method)
    x = expect_success(r, "show registered-ip")
    out = {}
    for e in x.findall("./result/entry"):
        check(e.get("ip") not in out, "ip listed twice: %r" % r)
        out[e.get("ip")] = [mm.text for mm in e.findall("./tag/member")]
    check(x.findtext("./result/count") == str(len(out)), "count: %r" % r)
    return out


def persistent_flags(m):
    x = m.panos({"type": "op", "cmd": SHOW_ALL}).xml
    return {e.get("ip"): e.get("persistent") for e in x.findall("./result/entry")}


def panos_counters(m):
    return m.counters()["panos"]


def test_panos_keygen():
    """keygen: the fixed key with the devices' status = '...' quirk, by GET and by form
    POST; bad or missing credentials are HTTP 403 with the error envelope; seeded admins
    (derived or explicit key, which is XML-escaped in the answer)."""
    check(panos_key(PANOS_USER, PANOS_PASSWORD) == PANOS_KEY, "mockctl's key formula")
    with MockServer() as m:
        r = m.panos({"type": "keygen", "user": PANOS_USER, "password": PANOS_PASSWORD},
                    key=None, method="GET")
        x = expect_success(r, "keygen GET")
        check(r.body.startswith(b"<response status = 'success'>"), "status quirk: %r" % r)
        check(x.findtext("./result/key") == PANOS_KEY, "key: %r" % r)
        r = m.panos({"type": "keygen", "user": PANOS_USER, "password": PANOS_PASSWORD}, key=None)
        check(expect_success(r, "keygen POST").findtext("./result/key") == PANOS_KEY,
              "POST key: %r" % r)
        for params in ({"user": PANOS_USER, "password": "wrong"},
                       {"user": "admin", "password": PANOS_PASSWORD},
                       {"user": PANOS_USER}):
            params["type"] = "keygen"
            r = m.panos(params, key=None)
            expect_envelope(r, 403, 403, "Invalid Credential", "keygen %r" % params)
            check(r.xml.find("./result/key") is None, "a key on failure: %r" % r)
        c = panos_counters(m)
        check(c["keygen"] == 2 and c["keygen_denied"] == 3, "counters: %r" % c)
        log = m.log_entries(10, "/api/")
        check([(e["route"], e["status"]) for e in log]
              == [("panos.keygen", 200)] * 2 + [("panos.keygen", 403)] * 3, "log: %r" % log)

    odd_key = "k<&'\">-key"
    seed = {"panosAdmins": [{"user": "second", "password": "p2"},
                            {"user": "third", "password": "p3", "key": odd_key}]}
    with MockServer(seed=seed) as m:
        for user, pw, key in ((PANOS_USER, PANOS_PASSWORD, PANOS_KEY),
                              ("second", "p2", panos_key("second", "p2")),
                              ("third", "p3", odd_key)):
            r = m.panos({"type": "keygen", "user": user, "password": pw}, key=None)
            check(expect_success(r, "keygen " + user).findtext("./result/key") == key,
                  "%s: %r" % (user, r))
            expect_success(m.panos({"type": "op", "cmd": SHOW_ALL}, key=key), "key of " + user)
        expect_envelope(m.panos({"type": "keygen", "user": "third", "password": "p2"}, key=None),
                        403, 403, "Invalid Credential", "another admin's password")


def test_panos_key_required():
    """Every type but keygen needs a key (X-PAN-KEY or key=) or Basic credentials, else
    HTTP 403 code 403; bad requests are HTTP 400 code 400; unsimulated types say so."""
    with MockServer(tls=False) as m:
        show = {"type": "op", "cmd": SHOW_ALL}
        expect_envelope(m.panos(show, key=None), 403, 403, "Invalid Credential", "no key")
        expect_envelope(m.panos(show, key=PANOS_KEY + "x"), 403, 403, "Invalid Credential",
                        "wrong key")
        expect_envelope(m.panos(dict(show, key="nope"), key=None, method="GET"), 403, 403,
                        "Invalid Credential", "wrong key= parameter")
        expect_envelope(m.panos({"type": "user-id", "cmd": uid_cmd(("register", [
            ("203.0.113.9", ["soar-block"])]))}, key=None), 403, 403, "Invalid Credential",
            "user-id without a key")
        check(m.registered_ips() == [], "a refused request registered something")
        expect_success(m.panos(show), "X-PAN-KEY")
        expect_success(m.panos(dict(show, key=PANOS_KEY), key=None, method="GET"), "key= in query")
        expect_success(m.panos(dict(show, key=PANOS_KEY), key=None), "key= in the form body")
        r = m.request("GET", "/api/?key=%s" % urllib.parse.quote(PANOS_KEY),
                      form=show)  # form body parameters with the key in the query
        expect_success(r, "key in query, command in body")
        basic = {"Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (PANOS_USER, PANOS_PASSWORD)).encode()).decode()}
        expect_success(m.panos(show, key=None, headers=basic), "Basic credentials")
        bad_basic = {"Authorization": "Basic " + base64.b64encode(
            ("%s:wrong" % PANOS_USER).encode()).decode()}
        expect_envelope(m.panos(show, key=None, headers=bad_basic), 403, 403,
                        "Invalid Credential", "wrong Basic password")

        text = expect_envelope(m.panos({"type": "bogus"}), 400, 400, what="unknown type")
        check("bogus" in text, "unknown type message: %r" % text)
        expect_envelope(m.panos({"cmd": SHOW_ALL}), 400, 400, what="no type")
        expect_envelope(m.panos({"type": "op"}), 400, 400, "Missing parameter: cmd", "no cmd")
        r = m.request("POST", "/api/", {"type": "op", "cmd": SHOW_ALL},
                      headers={"X-PAN-KEY": PANOS_KEY})
        expect_envelope(r, 400, 400, what="JSON body")
        text = expect_envelope(m.panos({"type": "export", "category": "configuration"}),
                               200, 1, what="type=export")
        check("not simulated" in text, "type=export message: %r" % text)
        r = m.request("PUT", "/api/?type=op", headers={"X-PAN-KEY": PANOS_KEY})
        expect_envelope(r, 405, 405, what="PUT")
        c = panos_counters(m)
        check(c["denied"] == 5 and c["op"] == 6 and c["bad_request"] == 4 and c["other"] == 1,
              "counters: %r" % c)
        check(m.counters()["routes"].get("panos") == 15, "route count: %r" % m.counters()["routes"])


def test_panos_register_list_unregister():
    """Register several addresses (single, CIDR, range, IPv6; persistent flag), list them
    with show object registered-ip (all, tag and ip filters, limit/start-point, GET too),
    unregister tags and whole addresses; unregister runs before register in one message;
    the control API shows and clears the state."""
    with MockServer() as m:
        r = user_id(m, ("register", [("203.0.113.9", [("soar-block", 86400)]),
                                     ("198.51.100.0/28", ["soar-watch"], "0"),
                                     ("2001:db8::1", ["soar-block"]),
                                     ("192.0.2.10-192.0.2.20", ["soar-block", "soar-watch"])]))
        expect_success(r, "register")
        check(r.xml.find("./result/uid-response") is not None, "success shape: %r" % r)
        want = {"203.0.113.9": ["soar-block"], "198.51.100.0/28": ["soar-watch"],
                "2001:db8::1": ["soar-block"],
                "192.0.2.10-192.0.2.20": ["soar-block", "soar-watch"]}
        check(listed(m) == want, "listed: %r" % listed(m))
        check(listed(m, method="GET") == want, "listed by GET")
        check(persistent_flags(m) == {"203.0.113.9": "1", "198.51.100.0/28": "0",
                                      "2001:db8::1": "1", "192.0.2.10-192.0.2.20": "1"},
              "persistent: %r" % persistent_flags(m))
        check(listed(m, "<show><object><registered-ip><limit>500</limit><start-point>1"
                        "</start-point></registered-ip></object></show>") == want,
              "pan-os-python's form (no <all/>)")
        by_tag = listed(m, '<show><object><registered-ip><tag><entry name="soar-watch"/></tag>'
                           '</registered-ip></object></show>')
        check(set(by_tag) == {"198.51.100.0/28", "192.0.2.10-192.0.2.20"},
              "tag filter: %r" % by_tag)
        by_ip = listed(m, "<show><object><registered-ip><ip>2001:db8::1</ip></registered-ip>"
                          "</object></show>")
        check(by_ip == {"2001:db8::1": ["soar-block"]}, "ip filter: %r" % by_ip)
        page = "<show><object><registered-ip><limit>%d</limit><start-point>%d</start-point>" \
               "</registered-ip></object></show>"
        p1, p2 = listed(m, page % (2, 1)), listed(m, page % (2, 3))
        check(len(p1) == 2 and len(p2) == 2 and dict(p1, **p2) == want, "pages: %r %r" % (p1, p2))
        check(listed(m, page % (2, 5)) == {}, "past the end")
        text = expect_envelope(m.panos({"type": "op", "cmd": page % (501, 1)}), 200, 17,
                               what="limit over 500")
        check("limit" in text, "limit message: %r" % text)

        expect_success(user_id(m, ("register", [("203.0.113.9", ["soar-watch"])])), "second tag")
        check(listed(m)["203.0.113.9"] == ["soar-block", "soar-watch"], "second tag listed")
        expect_success(user_id(m, ("unregister", [("203.0.113.9", ["soar-block"]),
                                                  ("2001:db8::1", ["soar-block"])])),
                       "unregister")
        after = listed(m)
        check(after["203.0.113.9"] == ["soar-watch"] and "2001:db8::1" not in after,
              "after unregister: %r" % after)
        expect_success(user_id(m, ("unregister", [("198.51.100.0/28", None)])),
                       "unregister without a tag list")
        check("198.51.100.0/28" not in listed(m), "every tag of the address removed")

        # One message: register first in the document, unregister second. Unregister runs
        # first, so the tag is removed and then registered again, and nothing is refused.
        r = user_id(m, ("register", [("192.0.2.10-192.0.2.20", ["soar-block"])]),
                    ("unregister", [("192.0.2.10-192.0.2.20", ["soar-block"])]), version="1.0")
        expect_success(r, "unregister before register")
        check(listed(m)["192.0.2.10-192.0.2.20"] == ["soar-watch", "soar-block"],
              "unregister did not run first: %r" % listed(m))

        state = {e["ip"]: e for e in m.registered_ips()}
        check(set(state) == {"203.0.113.9", "192.0.2.10-192.0.2.20"}, "state: %r" % state)
        t = state["203.0.113.9"]["tags"][0]
        check(t["name"] == "soar-watch" and t["timeout"] == 0 and t["expires"] is None,
              "state tag: %r" % t)
        c = panos_counters(m)
        check(c["registered"] == 7 and c["unregistered"] == 4 and c["active"] == 3
              and c["register_exists"] == 0 and c["unregister_missing"] == 0, "counters: %r" % c)
        m.clear_registered_ips()
        check(listed(m) == {} and m.registered_ips() == [], "DELETE state")


def test_panos_duplicate_messages():
    """Re-registering a tag answers status="error" with "tag T already exists, ignore",
    unregistering a missing one "tag T does not exist, ignore unreg" (both HTTP 200); the
    other entries of the message still apply."""
    with MockServer() as m:
        expect_success(user_id(m, ("register", [("203.0.113.9", ["soar-block"])])), "first")
        r = user_id(m, ("register", [("203.0.113.9", ["soar-block"]),
                                     ("203.0.113.10", ["soar-block"])]))
        errs = uid_errors(r, "duplicate")
        check(errs == [("register", "203.0.113.9", "tag soar-block already exists, ignore")],
              "duplicate: %r" % errs)
        check(errs[0][2].endswith("already exists, ignore"), "pan-os-python's test")
        check(set(listed(m)) == {"203.0.113.9", "203.0.113.10"}, "other entry applied")
        r = user_id(m, ("unregister", [("203.0.113.9", ["soar-watch", "soar-block"]),
                                       ("192.0.2.1", ["soar-block"])]))
        errs = uid_errors(r, "missing")
        check(errs == [("unregister", "203.0.113.9", "tag soar-watch does not exist, ignore unreg"),
                       ("unregister", "192.0.2.1", "tag soar-block does not exist, ignore unreg")],
              "missing: %r" % errs)
        check(listed(m) == {"203.0.113.10": ["soar-block"]}, "existing tag removed: %r" % listed(m))
        c = panos_counters(m)
        check(c["register_exists"] == 1 and c["unregister_missing"] == 2 and c["registered"] == 2
              and c["unregistered"] == 1, "counters: %r" % c)


def test_panos_timeout_expiry():
    """Tag timeouts (seconds) expire on the mock's clock: the tag disappears from show and
    from the state, the address with it when it was its last tag, and can be registered
    again; out-of-range timeouts are refused per entry."""
    with MockServer() as m:
        r = user_id(m, ("register", [("203.0.113.9", [("soar-block", 1), "soar-watch"]),
                                     ("203.0.113.10", [("soar-block", 1)]),
                                     ("203.0.113.11", [("soar-block", 2592000)])]))
        expect_success(r, "register with timeouts")
        check(set(listed(m)) == {"203.0.113.9", "203.0.113.10", "203.0.113.11"}, "before expiry")
        st = {e["ip"]: e for e in m.registered_ips()}
        check(st["203.0.113.9"]["tags"][0]["timeout"] == 1
              and st["203.0.113.9"]["tags"][0]["expires"] is not None
              and st["203.0.113.9"]["tags"][1]["expires"] is None, "state: %r" % st)
        time.sleep(1.3)
        after = listed(m)
        check(after == {"203.0.113.9": ["soar-watch"], "203.0.113.11": ["soar-block"]},
              "after expiry: %r" % after)
        check(panos_counters(m)["expired"] == 2, "expired: %r" % panos_counters(m))
        expect_success(user_id(m, ("register", [("203.0.113.10", ["soar-block"])])),
                       "registered again after expiry")
        r = user_id(m, ("register", [("203.0.113.12", [("soar-block", 2592001), ("b", "1h"),
                                                       ("c", -1)])]))
        errs = uid_errors(r, "bad timeouts")
        check(len(errs) == 3 and all("not valid" in e[2] for e in errs), "bad timeouts: %r" % errs)
        check("203.0.113.12" not in listed(m), "a bad timeout registered")


def test_panos_malformed_cmd():
    """A cmd that is not well-formed XML (or has a DOCTYPE) is status="error" code 18 and
    changes nothing; a well-formed but unexpected command is code 17, also with no effect."""
    with MockServer() as m:
        good = uid_cmd(("register", [("203.0.113.9", ["soar-block"])]))
        for cmd in (good[:-5], "register 203.0.113.9 soar-block", good.replace("<tag>", "<tag x>"),
                    '<!DOCTYPE uid-message [<!ENTITY a "203.0.113.9">]>' + good):
            expect_envelope(m.panos({"type": "user-id", "cmd": cmd}), 200, 18,
                            what="user-id %r" % cmd[:40])
        text = expect_envelope(m.panos({"type": "op", "cmd": SHOW_ALL[:-3]}), 200, 18,
                               what="op not well-formed")
        check(text.startswith("Malformed Request"), "message: %r" % text)
        expect_envelope(m.panos({"type": "user-id", "cmd": good.replace("uid-message", "uid-msg")}),
                        200, 17, what="wrong root")
        login = good.replace("</payload>", '<login><entry name="x" ip="192.0.2.5"/></login>'
                                           "</payload>")
        text = expect_envelope(m.panos({"type": "user-id", "cmd": login}), 200, 17, what="login")
        check("login" in text, "login message: %r" % text)
        expect_envelope(m.panos({"type": "op", "cmd": "<show><system><info/></system></show>"}),
                        200, 17, what="unknown op")
        check(m.registered_ips() == [], "a refused message registered something")
        c = panos_counters(m)
        check(c["malformed"] == 5 and c["registered"] == 0, "counters: %r" % c)
        expect_success(m.panos({"type": "user-id", "cmd": good}), "the good message")
        check(listed(m) == {"203.0.113.9": ["soar-block"]}, "the good message applied")


def test_panos_xml_escaping():
    """Tags and addresses with < & ' " > are escaped in every answer: show lists the tag
    exactly, and refusals carry the ip and message exactly as attributes."""
    with MockServer() as m:
        odd = "a<b&c'd\"e>&amp;f"
        expect_success(user_id(m, ("register", [("203.0.113.7", [odd])])), "register odd tag")
        r = m.panos({"type": "op", "cmd": SHOW_ALL})
        check(b"<b&c" not in r.body and b"&amp;amp;" in r.body, "raw body: %r" % r.body)
        check(listed(m) == {"203.0.113.7": [odd]}, "odd tag listed: %r" % listed(m))
        errs = uid_errors(user_id(m, ("register", [("203.0.113.7", [odd])])), "odd duplicate")
        check(errs == [("register", "203.0.113.7", "tag %s already exists, ignore" % odd)],
              "odd duplicate: %r" % errs)
        bad_ip = "1.2.3.4\"/><x a='&"
        errs = uid_errors(user_id(m, ("register", [(bad_ip, ["t"])])), "odd ip")
        check(len(errs) == 1 and errs[0][1] == bad_ip and bad_ip in errs[0][2],
              "odd ip: %r" % errs)
        root = ET.fromstring(
            "<show><object><registered-ip><tag><entry/></tag></registered-ip></object></show>")
        root.find("./object/registered-ip/tag/entry").set("name", odd)
        check(listed(m, ET.tostring(root, encoding="unicode")) == {"203.0.113.7": [odd]},
              "filter by the odd tag")


def test_panos_faults():
    """/_mock/fault and /_mock/delay apply to /api/ like to every route: 503/429 with the
    XML envelope and Retry-After and no side effect, a dropped connection with no side
    effect, a truncated body, latency; reset clears the registrations and counters."""
    with MockServer() as m:
        reg = {"type": "user-id", "cmd": uid_cmd(("register", [("203.0.113.9", ["soar-block"])]))}
        m.fault("/api/", status=503, retry_after=5)
        r = m.panos(reg)
        expect_envelope(r, 503, 503, what="503 fault")
        check(r.header("Retry-After") == "5", "Retry-After: %r" % r.headers)
        m.fault("/api/", status=429, method="POST")
        expect_success(m.panos({"type": "op", "cmd": SHOW_ALL}, method="GET"), "GET not matched")
        expect_envelope(m.panos(reg), 429, 429, what="429 fault")
        check(m.registered_ips() == [], "a faulted request had an effect")

        m.fault("/api/", drop=True)
        m.expect_dropped("POST", "/api/", urllib.parse.urlencode(reg),
                         {"X-PAN-KEY": PANOS_KEY,
                          "Content-Type": "application/x-www-form-urlencoded"})
        check(m.registered_ips() == [], "a dropped request had an effect")

        m.fault("/api/", malformed=True)
        r = m.panos({"type": "op", "cmd": SHOW_ALL})
        check(r.status == 200 and r.xml is None and r.body.startswith(b"<response"),
              "malformed: %r" % r)

        m.delay("/api/", 300)
        t0 = time.monotonic()
        expect_success(m.panos(reg), "delayed register")
        check(time.monotonic() - t0 >= 0.28, "delay not applied")
        m.clear_faults()
        check(listed(m) == {"203.0.113.9": ["soar-block"]}, "after the delay")
        cnt = m.counters()
        check(cnt["faults_applied"] == 4 and cnt["answered_429"] == 1, "counters: %r" % cnt)
        log = m.log_entries(20, "/api/")
        check([e["status"] for e in log][:5] == [503, 200, 429, 0, 200], "log: %r" % log)
        check([e["route"] for e in log][3:7] == ["panos", "panos", "panos.user-id", "panos.op"],
              "log routes (a faulted request keeps the route's name): %r" % log)
        m.reset()
        check(m.registered_ips() == [] and panos_counters(m)["registered"] == 0, "reset")


VSYS = "/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='vsys1']"


def cfg(m, action, xpath, element=None):
    p = {"type": "config", "action": action, "xpath": xpath}
    if element is not None:
        p["element"] = element
    return m.panos(p)


def test_panos_config_objects_and_groups():
    """type=config: address objects are set (merging), read back and deleted; a static
    group's members are added and removed; a missing object's delete is success code 7;
    deleting an address a group uses is code 10; bad elements are code 12; an xpath
    whose name literal is broken (a quote inside) or that names something else is
    code 6; nothing changes on a refusal."""
    with MockServer() as m:
        addr = VSYS + "/address/entry[@name='h-1']"
        x = expect_success(cfg(m, "set", addr, "<ip-netmask>192.0.2.10</ip-netmask>"
                               "<description>a &amp; b</description>"), "set")
        check(x.get("code") == "20", "code %r" % x.attrib)
        expect_success(cfg(m, "set", addr, "<tag><member>kagari</member></tag>"), "merge")
        x = expect_success(cfg(m, "get", addr), "get")
        e = x.find("result/entry")
        check(e is not None and e.findtext("ip-netmask") == "192.0.2.10"
              and e.findtext("description") == "a & b"
              and [t.text for t in e.findall("tag/member")] == ["kagari"], "get %r" % x)
        grp = VSYS + "/address-group/entry[@name='kagari-block']/static"
        expect_success(cfg(m, "set", grp, "<member>h-1</member>"), "group")
        expect_success(cfg(m, "set", grp, "<member>h-1</member>"), "group again")
        text = expect_envelope(cfg(m, "delete", addr), 200, 10, what="in use")
        check("referenced" in text, text)
        expect_envelope(cfg(m, "set", VSYS + "/address/entry[@name='h-2']",
                            "<ip-netmask>not-an-ip</ip-netmask>"), 200, 12, what="bad ip")
        expect_envelope(cfg(m, "set", VSYS + "/address/entry[@name='h-2']",
                            "<fqdn>x.example.jp</fqdn>"), 200, 12, what="other element")
        expect_envelope(cfg(m, "set", VSYS + "/address/entry[@name='h-2']",
                            "<description>x</description>"), 200, 12, what="no ip-netmask")
        expect_envelope(cfg(m, "set", VSYS + "/address/entry[@name='a'b']",
                            "<ip-netmask>192.0.2.1</ip-netmask>"), 200, 6, what="quote")
        expect_envelope(cfg(m, "set", VSYS + "/address/entry[@name='x']/../../rulebase",
                            "<x/>"), 200, 6, what="other xpath")
        expect_envelope(cfg(m, "set", VSYS + "/address/entry[@name='h-3']", "<a>"), 200, 18,
                        what="bad element")
        expect_success(cfg(m, "delete", grp + "/member[text()='h-1']"), "member delete")
        expect_success(cfg(m, "delete", addr), "address delete")
        x = expect_success(cfg(m, "delete", addr), "absent")
        check(x.get("code") == "7", "absent %r" % x.attrib)
        st = m.panos_state()
        check(st["addresses"] == [] and st["groups"] == [{"name": "kagari-block",
                                                          "static": []}], "state %r" % st)
        check(st["counters"]["config_rejected"] >= 5, "counters %r" % st["counters"])


def test_panos_commit_jobs_and_lock():
    """type=commit: nothing to commit is success without a job; a change gets a job that
    finishes after commit_polls polls (OK), a commit while a job runs is refused "in
    progress"; a dangling group member fails the job with its reason; another admin's
    lock refuses changes (code 14) and commits (code 13); jobs are listed newest first."""
    with MockServer() as m:
        commit = {"type": "commit", "cmd": "<commit><description>x</description></commit>"}
        x = expect_success(m.panos(commit), "no changes")
        check(x.get("code") == "19" and "no changes" in x.findtext("msg"), "%r" % x)
        m.panos_control(commit_polls=3)
        cfg(m, "set", VSYS + "/address/entry[@name='h-1']", "<ip-netmask>192.0.2.1</ip-netmask>")
        x = expect_success(m.panos(commit), "commit")
        job = x.findtext("result/job")
        check(job == "4711", "job %r" % job)
        expect_envelope(m.panos(commit), 200, 13, "Another commit/validate is in progress. "
                        "Please try again later", "in progress")
        show = {"type": "op", "cmd": "<show><jobs><id>4711</id></jobs></show>"}
        for i in range(2):
            j = expect_success(m.panos(show), "poll").find("result/job")
            check(j.findtext("status") == "ACT" and j.findtext("result") == "PEND", "poll %d" % i)
        j = expect_success(m.panos(show), "poll 3").find("result/job")
        check(j.findtext("status") == "FIN" and j.findtext("result") == "OK", "final %r" % j)
        expect_envelope(m.panos({"type": "op", "cmd": "<show><jobs><id>9</id></jobs></show>"}),
                        200, 7, what="unknown job")
        cfg(m, "set", VSYS + "/address-group/entry[@name='g']/static", "<member>nope</member>")
        job = expect_success(m.panos(commit), "commit 2").findtext("result/job")
        for i in range(3):
            j = expect_success(m.panos({"type": "op", "cmd": "<show><jobs><id>%s</id></jobs>"
                                        "</show>" % job}), "poll").find("result/job")
        check(j.findtext("result") == "FAIL" and "not a valid reference"
              in j.findtext("details/line"), "fail %r" % ET.tostring(j))
        jobs = expect_success(m.panos({"type": "op", "cmd": "<show><jobs><all/></jobs></show>"}),
                              "all").findall("result/job")
        check([j.findtext("id") for j in jobs] == ["4712", "4711"], "jobs")
        m.panos_control(lock="admin2")
        expect_envelope(cfg(m, "delete", VSYS + "/address-group/entry[@name='g']/static"), 200,
                        14, "Configuration is locked by admin2", "locked change")
        expect_envelope(m.panos(commit), 200, 13, what="locked commit")
        m.panos_control(lock=None)
        expect_success(cfg(m, "delete", VSYS + "/address-group/entry[@name='g']/static"),
                       "unlocked")
        r = m.request("POST", "/_mock/state/panos", {"lock": 5})
        check(r.status == 400, "bad control %r" % r)
