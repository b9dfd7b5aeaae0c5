"""Tenant separation: each tenant's alerts and runs live in its own database file and
never show up in another tenant's."""

import os

from harness import Daemon, check, expect_accepted, playbook


def test_tenant_separation():
    with Daemon("tenants") as d:
        d.add_tenant("t2")
        d.write_playbook("tenant.lua", playbook(
            "tenant-log", "it.tenant", '    log.info("tenant alert " .. alert.source_id)'))
        d.start()
        a1 = expect_accepted(d.post({"source": "it.tenant", "source_id": "shared"}, tenant="t1"), 1)
        a1b = expect_accepted(d.post({"source": "it.tenant", "source_id": "only-t1"},
                                     tenant="t1"), 1)
        # the same (source, source_id) in t2 is t2's own alert, not a duplicate
        a2 = expect_accepted(d.post({"source": "it.tenant", "source_id": "shared"}, tenant="t2"), 1)
        a2b = expect_accepted(d.post([{"source": "it.tenant", "source_id": "only-t2-%d" % i}
                                      for i in range(3)], tenant="t2"), 3)
        for aid in a1 + a1b:
            r = d.wait_run_final(aid, tenant="t1")
            check(r["state"] == "done", "t1 run: %r" % r)
        for aid in a2 + a2b:
            r = d.wait_run_final(aid, tenant="t2")
            check(r["state"] == "done", "t2 run: %r" % r)

        p1, p2 = d.db_path("t1"), d.db_path("t2")
        check(os.path.isfile(p1) and os.path.isfile(p2) and not os.path.samefile(p1, p2),
              "expected separate files %s and %s" % (p1, p2))
        s1 = sorted(r[0] for r in d.query("SELECT source_id FROM alerts", tenant="t1"))
        s2 = sorted(r[0] for r in d.query("SELECT source_id FROM alerts", tenant="t2"))
        check(s1 == ["only-t1", "shared"], "t1.db alerts: %r" % s1)
        check(s2 == ["only-t2-0", "only-t2-1", "only-t2-2", "shared"], "t2.db alerts: %r" % s2)

        runs1 = d.runs("t1")
        runs2 = d.runs("t2")
        check(len(runs1) == 2 and all(r.get("tenant", "t1") == "t1" for r in runs1),
              "t1 runs: %r" % runs1)
        check(len(runs2) == 4 and all(r.get("tenant", "t2") == "t2" for r in runs2),
              "t2 runs: %r" % runs2)
        check(sorted(r["alert_id"] for r in runs1) == sorted(a1 + a1b),
              "t1 runs belong to alerts %r, t1 posted %r" % ([r["alert_id"] for r in runs1],
                                                            a1 + a1b))
        # the journal of a t2 run says which alert it saw: only t2's source_ids
        for r in runs2:
            j = d.run_show(r["id"], tenant="t2")["journal"]
            msgs = [e["request"]["msg"] for e in j if e["kind"] == "log"]
            check(len(msgs) == 1 and msgs[0] in ("tenant alert shared", "tenant alert only-t2-0",
                                                 "tenant alert only-t2-1",
                                                 "tenant alert only-t2-2"),
                  "t2 run %d journal: %r" % (r["id"], j))
        # `kagari runs --tenant t1` (the table) shows no t2 run
        out = d.cli("runs", "--tenant", "t1").stdout
        check(" t2 " not in out and "t2" not in [ln.split()[0] for ln in out.splitlines()[1:]
                                                 if ln.strip()],
              "kagari runs --tenant t1 lists t2 runs:\n%s" % out)
        # a token works only for its own tenant's data: t2's token never reaches t1.db
        n_t1 = d.query("SELECT COUNT(*) FROM runs", tenant="t1")[0][0]
        check(n_t1 == 2, "t1.db holds %d runs, expected 2" % n_t1)
        d.stop()
