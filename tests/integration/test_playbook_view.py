"""The portal's playbook view through the people's API over real HTTPS: `kagari playbook
deploy` records who deployed which version when (in every tenant's database), a reload
records a changed file without a deployer, the list and a playbook's history show it
with the runs of each version, a version's source, the runs of a version, hostile names
and another tenant's versions answer 404, and the dry-run switch: refused to analysts
and auditors (403, audited), CSRF-protected, audited, and the next run follows it."""

import getpass
import os
import signal
import sqlite3

from connhelp import lua_str, tenant_config
from harness import check, expect_accepted, run_cli, wait_for
from mockctl import MockServer
from peopleapi import Api, add_user, api_daemon, api_port, audit_rows

PB = """return playbook {
  name = "pv-contain",
  description = "Disable the account of a risky sign-in",
  on = { source = "it.pv", min_severity = "low" },
  run = function(alert)
    local ok, err = graph.disable_user("alice@example.jp")
    log.info("%s")
  end,
}
"""


def version_of(d, name):
    rows = d.query("SELECT version FROM playbook_deploys WHERE name = ? ORDER BY id DESC",
                   (name,))
    return rows[0][0]


def was_dry(d, run_id):
    """Whether the run's one disable call was recorded as a dry run (else it was made, on
    the mock)."""
    journal = d.run_show(run_id)["journal"]
    calls = [e for e in journal if e["kind"] == "graph.disable_user"]
    check(len(calls) == 1, "one disable call: %r" % journal)
    res = calls[0]["result"]
    return isinstance(res, dict) and res.get("dry_run") is True


def test_deploy_history_and_dry_run_switch():
    with MockServer() as m, api_daemon("pbview") as d:
        with open(d.config, "a") as f:
            f.write("\nconnectors = { ca_file = %s }\n%s\n" % (lua_str(m.ca_file),
                                                                 tenant_config(m)))
        d.add_tenant("t2")
        eng = add_user(d, "eng1", "t1:engineer")
        ana = add_user(d, "ana1", "t1:analyst")
        aud = add_user(d, "aud1", "t1:auditor")
        other = add_user(d, "ana2", "t2:analyst")
        d.start()
        # Deployed by the OS user with the CLI: installed, recorded in both tenants, and
        # the daemon reloads.
        staged = os.path.join(d.dir, "pv-contain.lua")
        with open(staged, "w") as f:
            f.write(PB % "v1")
        out = run_cli(["playbook", "deploy", staged, "--config", d.config], check_rc=0).stdout
        check("recorded in 2 tenants" in out and "reloaded" in out, "deploy: %r" % out)
        check(os.path.exists(os.path.join(d.pbdir, "pv-contain.lua")), "installed")
        wait_for(lambda: "name=pv-contain" in d.log(), 10, "v1 loaded")
        v1 = version_of(d, "pv-contain")
        me = getpass.getuser()
        for tenant in ("t1", "t2"):
            rows = d.query("SELECT version, deployed_by, via FROM playbook_deploys"
                           " WHERE name = 'pv-contain'", tenant=tenant)
            check(len(rows) == 1 and rows[0][1] == me and rows[0][2] == "cli",
                  "%s: deploy rows: %r (want one by %s)" % (tenant, rows, me))
        deployed = audit_rows(d, "playbook.deploy")
        check(sorted((x[0], x[1], x[3], x[4]) for x in deployed)
              == [("t1", me, "pv-contain", "ok"), ("t2", me, "pv-contain", "ok")]
              and all(v1 in x[6] for x in deployed), "deploy audited: %r" % deployed)
        r1 = expect_accepted(d.post({"source": "it.pv", "source_id": "a1", "severity": "high"}), 1)
        run1 = d.wait_run_final(r1[0])
        # A second version, copied in by hand and reloaded: recorded without a deployer.
        d.write_playbook("pv-contain.lua", PB % "v2")
        d.signal(signal.SIGHUP)
        wait_for(lambda: version_of(d, "pv-contain") != v1, 10, "v2 loaded")
        v2 = version_of(d, "pv-contain")
        check(v2 != v1, "a new version")
        r2 = expect_accepted(d.post({"source": "it.pv", "source_id": "a2", "severity": "high"}), 1)
        run2 = d.wait_run_final(r2[0])
        check(not was_dry(d, run2["id"]),
              "not a dry run before the switch")

        # The same history at the command line.
        out = d.cli("playbook", "history", "pv-contain", "--tenant", "t1").stdout
        rows = [ln.split("\t") for ln in out.splitlines()]
        check(len(rows) == 2 and rows[0][:3] == ["t1", "pv-contain", v2[:12]]
              and rows[0][4:] == ["-", "reload"] and rows[1][2] == v1[:12]
              and rows[1][4:] == [me, "cli"], "history: %r" % out)
        out = d.cli("playbook", "history").stdout.splitlines()
        check(sorted(ln.split("\t")[0] for ln in out) == ["t1", "t2"], "latest: %r" % out)
        d.cli("playbook", "history", "nope", check_rc=1)
        port = api_port(d)
        c = {}
        for name, u in (("eng", eng), ("ana", ana), ("aud", aud), ("other", other)):
            c[name] = Api(port, cafile=d.api_cert)
            check(c[name].login(u).status == 200, "login " + name)
        base = "/api/v1/tenants/t1/playbooks"
        lst = c["ana"].get(base)
        check(lst.status == 200, "list: %r" % lst)
        p = [x for x in lst.json["playbooks"] if x["name"] == "pv-contain"]
        check(len(p) == 1, "listed: %r" % lst.json)
        p = p[0]
        check(p["version"] == v2 and p["serving"] and p["deployed_by"] is None
              and p["deployed_via"] == "reload", "latest: %r" % p)
        check(p["triggers"] == {"source": ["it.pv"], "min_severity": "low", "outcome": []},
              "triggers: %r" % p["triggers"])
        check(p["runs_30d"] == 2 and p["dry_run"]["effective"] is False
              and p["dry_run"]["switch"] is None, "runs and dry run: %r" % p)
        full = c["aud"].get(base + "/pv-contain").json
        deps = full["deployments"]
        check([(x["version"], x["deployed_by"], x["via"], x["runs"]) for x in deps]
              == [(v2, None, "reload", 1), (v1, me, "cli", 1)], "history: %r" % deps)
        src = c["ana"].get(base + "/pv-contain/versions/" + v1).json
        check(src["source"] == PB % "v1" and src["runs"] == 1, "v1 source: %r" % src)
        runs = c["ana"].get(base + "/pv-contain/versions/" + v1 + "/runs").json["runs"]
        check([x["id"] for x in runs] == [run1["id"]] and runs[0]["version"] == v1,
              "runs of v1: %r" % runs)

        # Hostile and foreign names and versions: one 404, like an unknown id.
        nf = c["ana"].get(base + "/nope")
        check(nf.status == 404, "unknown playbook: %r" % nf)
        for path in ("/%2e%2e", "/pv-contain%00", "/" + "x" * 70, "/pv-contain/versions/" + "0" * 64,
                     "/pv-contain/versions/" + v1.upper(), "/pv-contain/versions/" + v1[:63],
                     "/pv-contain/versions/" + v1 + "x", "/pv-contain/versions/../../runs",
                     "/pv-contain/versions/%s/runs?limit=0" % v1):
            r = c["ana"].get(base + path)
            check(r.status in (400, 404), "%s: %r" % (path, r))
            if r.status == 404:
                check(r.body == nf.body, "%s: a 404 unlike the others: %r" % (path, r.body))
        check(c["other"].get(base).status == 404, "another tenant's list")
        check(c["other"].get(base + "/pv-contain/versions/" + v1).body == nf.body,
              "t1 through a t2 analyst")
        # A version that only t2 has (as if deployed there alone) is unknown in t1.
        d.stop()
        t2db = sqlite3.connect(d.db_path("t2"))
        t2db.execute("INSERT INTO playbook_versions (hash, name, source, created)"
                     " VALUES (?, 'pv-contain', 'return 1', 1)", ("e" * 64,))
        t2db.execute("INSERT INTO playbook_deploys (name, version, deployed, deployed_by, via)"
                     " VALUES ('pv-contain', ?, 1, 'x', 'cli')", ("e" * 64,))
        t2db.execute("INSERT INTO playbook_versions (hash, name, source, created)"
                     " VALUES (?, 'only-t2', 'return 1', 1)", ("f" * 64,))
        t2db.execute("INSERT INTO playbook_deploys (name, version, deployed, deployed_by, via)"
                     " VALUES ('only-t2', ?, 1, 'x', 'cli')", ("f" * 64,))
        t2db.commit()
        t2db.close()
        d.start()
        port = api_port(d)
        for u, cl in (("eng", eng), ("ana", ana), ("aud", aud), ("other", other)):
            c[u] = Api(port, cafile=d.api_cert)
            check(c[u].login(cl).status == 200, "login again " + u)
        check(c["ana"].get(base + "/pv-contain/versions/" + "e" * 64).body == nf.body,
              "t2's version through t1")
        check(c["ana"].get(base + "/only-t2").body == nf.body, "t2's playbook through t1")
        check(c["other"].get("/api/v1/tenants/t2/playbooks/only-t2").status == 200,
              "t2's own playbook")

        # The switch: analysts and auditors are refused (and audited), a change needs
        # the CSRF token, the engineer's is audited and the next run is a dry run.
        for who in ("ana", "aud"):
            r = c[who].request("POST", base + "/pv-contain/dry-run", {"dry_run": True})
            check(r.status == 403 and r.json["error"] == "forbidden", "%s: %r" % (who, r))
        r = c["eng"].request("POST", base + "/pv-contain/dry-run", {"dry_run": True}, csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "no CSRF: %r" % r)
        for bad in ({"dry_run": "yes"}, {"dry_run": 1}, {}, {"dry_run": True, "x": 1}, [True],
                    "not json"):
            r = c["eng"].request("POST", base + "/pv-contain/dry-run", bad)
            check(r.status == 400, "bad body %r: %r" % (bad, r))
        check(c["eng"].request("POST", base + "/nope/dry-run", {"dry_run": True}).status == 404,
              "unknown playbook")
        r = c["eng"].request("POST", base + "/pv-contain/dry-run", {"dry_run": True})
        check(r.status == 200 and r.json["dry_run"]["effective"] is True
              and r.json["dry_run"]["switch"] is True and r.json["dry_run"]["changed_by"] == "eng1",
              "switched on: %r" % r)
        check(c["ana"].get(base + "/pv-contain").json["dry_run"]["effective"] is True,
              "the analyst sees it")
        r3 = expect_accepted(d.post({"source": "it.pv", "source_id": "a3", "severity": "high"}), 1)
        run3 = d.wait_run_final(r3[0])
        check(was_dry(d, run3["id"]),
              "the next run is a dry run")
        check(d.query("SELECT dry_run FROM runs WHERE id = ?", (run3["id"],))[0][0] == 1,
              "fixed on the run")
        # A run started by hand follows the switch too.
        r = c["eng"].request("POST", "/api/v1/tenants/t1/alerts/%d/runs" % r1[0],
                             {"playbook": "pv-contain"})
        check(r.status == 201, "run by hand: %r" % r)
        hand = r.json["run_id"]
        wait_for(lambda: d.run_show(hand)["state"] in ("done", "failed"), 20, "the hand run")
        check(was_dry(d, hand), "the run started by hand is a dry run")
        # Off again, then back to the file's own setting.
        r = c["eng"].request("POST", base + "/pv-contain/dry-run", {"dry_run": False})
        check(r.status == 200 and r.json["dry_run"]["effective"] is False, "off: %r" % r)
        r4 = expect_accepted(d.post({"source": "it.pv", "source_id": "a4", "severity": "high"}), 1)
        run4 = d.wait_run_final(r4[0])
        check(not was_dry(d, run4["id"]), "off: not dry")
        r = c["eng"].request("POST", base + "/pv-contain/dry-run", {"dry_run": None})
        check(r.status == 200 and r.json["dry_run"]["switch"] is None, "cleared: %r" % r)
        rows = [x for x in audit_rows(d, "playbook.dry_run")]
        check([(x[1], x[4]) for x in rows if x[4] == "ok"]
              == [("eng1", "ok")] * 3, "audited: %r" % rows)
        check('"dry_run":true' in rows[-3][6] or any('"dry_run":true' in (x[6] or "")
                                                      for x in rows), "detail: %r" % rows)
        denied = [x for x in audit_rows(d, "access") if x[4] == "forbidden"]
        check({x[1] for x in denied} >= {"ana1", "aud1"}, "refusals audited: %r" % denied)
        d.stop()


test_deploy_history_and_dry_run_switch.TIMEOUT = 240


def test_deploy_refuses_a_broken_file():
    """A file that does not load is refused and nothing is installed or recorded."""
    with api_daemon("pbview-bad") as d:
        d.start()
        staged = os.path.join(d.dir, "broken.lua")
        with open(staged, "w") as f:
            f.write("return playbook { name = 'broken', on = { min_severity = 'hot' },"
                    " run = function() end }")
        p = run_cli(["playbook", "deploy", staged, "--config", d.config], check_rc=1)
        check("min_severity" in p.stderr, "reason: %r" % p.stderr)
        check(not os.path.exists(os.path.join(d.pbdir, "broken.lua")), "not installed")
        check(d.query("SELECT count(*) FROM playbook_deploys WHERE name = 'broken'")[0][0] == 0,
              "not recorded")
        # Another file of the folder serves a playbook of that name already: refused.
        d.write_playbook("old-name.lua", PB % "old")
        other = os.path.join(d.dir, "pv-contain.lua")
        with open(other, "w") as f:
            f.write(PB % "new")
        p = run_cli(["playbook", "deploy", other, "--config", d.config], check_rc=1)
        check("old-name.lua" in p.stderr, "same name: %r" % p.stderr)
        check(not os.path.exists(os.path.join(d.pbdir, "pv-contain.lua")), "not installed")
        for name in ("x_test.lua", ".hidden.lua", "noext"):
            path = os.path.join(d.dir, name)
            with open(path, "w") as f:
                f.write(PB % "x")
            p = run_cli(["playbook", "deploy", path, "--config", d.config], check_rc=1)
            check("NAME.lua" in p.stderr, "%s: %r" % (name, p.stderr))
        d.stop()


SLOW = """return playbook {
  name = "pv-slow",
  on = { source = "it.pv.slow" },
  run = function(alert)
    sleep(2)
    local ok, err = graph.disable_user("alice@example.jp")
  end,
}
"""


def test_a_run_keeps_its_dry_run_across_kill9():
    """A run created while the switch was on stays a dry run when the switch is turned
    off meanwhile and the daemon is killed and restarted before its call; a run created
    after the switch went off is not one. The mock sees only the second call."""
    with MockServer() as m, api_daemon("pbview-kill") as d:
        with open(d.config, "a") as f:
            f.write("\nconnectors = { ca_file = %s }\n%s\n" % (lua_str(m.ca_file),
                                                               tenant_config(m)))
        eng = add_user(d, "eng1", "t1:engineer")
        d.write_playbook("pv-slow.lua", SLOW)
        d.start()
        c = Api(api_port(d), cafile=d.api_cert)
        check(c.login(eng).status == 200, "login")
        base = "/api/v1/tenants/t1/playbooks/pv-slow/dry-run"
        check(c.request("POST", base, {"dry_run": True}).status == 200, "on")
        a1 = expect_accepted(d.post({"source": "it.pv.slow", "source_id": "k1"}), 1)[0]
        d.wait_run_state(a1, ("waiting",))
        check(c.request("POST", base, {"dry_run": False}).status == 200, "off")
        a2 = expect_accepted(d.post({"source": "it.pv.slow", "source_id": "k2"}), 1)[0]
        d.wait_run_state(a2, ("waiting",))
        d.kill9()
        d.restart()
        r1 = d.wait_run_final(a1, timeout=30)
        r2 = d.wait_run_final(a2, timeout=30)
        check(was_dry(d, r1["id"]), "the first run stayed a dry run")
        check(not was_dry(d, r2["id"]), "the second is not one")
        check(m.counters()["users"].get("alice@example.jp", {}).get("disable") == 1,
              "the mock saw one disable: %r" % m.counters())
        d.stop()


test_a_run_keeps_its_dry_run_across_kill9.TIMEOUT = 120


def test_operator_deploys_through_the_api():
    """A platform operator deploys a playbook through the API: loaded first (a broken one
    is refused with the reason), installed, recorded in every tenant with the person as
    deployer and audited, served at once. A tenant's engineer or admin is refused: the
    folder serves every tenant."""
    with api_daemon("pbview-api") as d:
        d.add_tenant("t2")
        op = add_user(d, "op1", "*:operator")
        eng = add_user(d, "eng1", "t1:engineer")
        adm = add_user(d, "adm1", "t1:admin")
        d.write_playbook("other.lua", PB.replace("pv-contain", "pv-other") % "x")
        d.start()
        c = {}
        for name, u in (("op", op), ("eng", eng), ("adm", adm)):
            c[name] = Api(api_port(d), cafile=d.api_cert)
            check(c[name].login(u).status == 200, "login " + name)
        good = {"file": "pv-contain.lua", "source": PB % "api"}
        for who in ("eng", "adm"):
            r = c[who].request("POST", "/api/v1/playbooks", good)
            check(r.status == 403, "%s: %r" % (who, r))
        check(c["op"].request("POST", "/api/v1/playbooks", good, csrf=False).status == 403,
              "CSRF")
        for bad in ({"file": "../x.lua", "source": PB % "x"}, {"file": "x_test.lua", "source": "x"},
                    {"file": ".x.lua", "source": "x"}, {"file": "x.txt", "source": "x"},
                    {"file": "x.lua"}, {"file": "x.lua", "source": "x", "more": 1}, [1], "nope"):
            r = c["op"].request("POST", "/api/v1/playbooks", bad)
            check(r.status == 400 and r.json["error"] == "bad_request", "%r: %r" % (bad, r))
        r = c["op"].request("POST", "/api/v1/playbooks",
                            {"file": "broken.lua", "source": "return playbook { name = 'b',"
                             " on = { min_severity = 'hot' }, run = function() end }"})
        check(r.status == 400 and r.json["error"] == "bad_playbook"
              and "min_severity" in r.json["message"], "broken: %r" % r)
        check(not os.path.exists(os.path.join(d.pbdir, "broken.lua")), "broken: not installed")
        r = c["op"].request("POST", "/api/v1/playbooks",
                            {"file": "renamed.lua", "source": PB.replace("pv-contain", "pv-other")
                             % "y"})
        check(r.status == 409, "a name served by another file: %r" % r)
        r = c["op"].request("POST", "/api/v1/playbooks", good)
        check(r.status == 201 and r.json["reloaded"] is True and r.json["name"] == "pv-contain",
              "deployed: %r" % r)
        version = r.json["version"]
        with open(os.path.join(d.pbdir, "pv-contain.lua")) as f:
            check(f.read() == PB % "api", "installed as sent")
        check("name=pv-contain" in d.log(), "served after the reload")
        for tenant in ("t1", "t2"):
            rows = d.query("SELECT version, deployed_by, via FROM playbook_deploys"
                           " WHERE name = 'pv-contain'", tenant=tenant)
            check(rows == [(version, "op1", "api")], "%s: %r" % (tenant, rows))
        p = c["eng"].get("/api/v1/tenants/t1/playbooks/pv-contain").json
        check(p["deployed_by"] == "op1" and p["deployed_via"] == "api" and p["serving"],
              "shown: %r" % p)
        rows = audit_rows(d, "playbook.deploy")
        check(sorted((x[0], x[1], x[4]) for x in rows if x[4] == "ok")
              == [("t1", "op1", "ok"), ("t2", "op1", "ok")], "audited: %r" % rows)
        d.stop()
