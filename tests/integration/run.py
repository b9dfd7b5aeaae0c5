#!/usr/bin/env python3
"""run.py: the integration suite. Usage: run.py BUILD_DIR [NAME_FILTER...]

Discovers tests/integration/test_*.py and their test_* functions (in file order), runs
each against BUILD_DIR/kagari, prints "ok NAME" or "not ok NAME" with the failure, and
ends with "integration: N passed, N failed" (exit 1 when any failed). A test function
may set a TIMEOUT attribute (seconds, default 60); past it the test fails.
Set KAGARI_IT_KEEP=1 to keep the temporary folders of failed tests.
"""

import importlib.util
import inspect
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


def discover():
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        modname = fn[:-3]
        spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        funcs = [
            (name, f)
            for name, f in vars(mod).items()
            if name.startswith("test_") and inspect.isfunction(f) and f.__module__ == modname
        ]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        for name, f in funcs:
            tests.append(("%s.%s" % (modname[5:], name[5:]), f))
    return tests


def main(argv):
    if len(argv) < 2:
        print("usage: run.py BUILD_DIR [NAME_FILTER...]", file=sys.stderr)
        return 2
    harness.BUILD = os.path.abspath(argv[1])
    filters = argv[2:]
    passed = failed = 0
    if not os.access(harness.kagari(), os.X_OK):
        print("not ok setup: %s is missing" % harness.kagari())
        print("integration: 0 passed, 1 failed")
        return 1
    signal.signal(signal.SIGALRM, on_alarm)
    suite_start = time.monotonic()
    for name, f in discover():
        if filters and not any(x in name for x in filters):
            continue
        t0 = time.monotonic()
        signal.alarm(int(getattr(f, "TIMEOUT", DEFAULT_TIMEOUT)))
        try:
            f()
            signal.alarm(0)
            passed += 1
            print("ok %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        except BaseException as e:  # noqa: B902 -- a test's failure of any kind
            signal.alarm(0)
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print("not ok %s (%.1fs)" % (name, time.monotonic() - t0))
            if isinstance(e, (harness.TestFailure, TestTimeout)):
                tb = traceback.extract_tb(e.__traceback__)
                where = [fr for fr in tb if os.path.basename(fr.filename).startswith("test_")]
                loc = where[-1] if where else tb[-1]
                msg = "%s:%d: %s" % (os.path.basename(loc.filename), loc.lineno, e)
                for line in msg.splitlines():
                    print("    " + line)
            else:
                for line in traceback.format_exc().rstrip().splitlines():
                    print("    " + line)
            sys.stdout.flush()
    print("# %.1fs" % (time.monotonic() - suite_start))
    print("integration: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
