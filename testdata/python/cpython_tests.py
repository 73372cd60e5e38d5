"""Runs CPython test modules with unittest and prints one summary line per module.

Used to compare the wasm CPython with the native one on CPython's own tests (docs/stdlib.md):
the same script, the same modules, in both. Each line is

    MODULE run=N failures=F errors=E skipped=S

followed by one `  FAIL id: exception` / `  ERROR id: exception` line per failing test (the
last line of its traceback), and with `--skips` one `  SKIP id: reason` line per skipped test. Exit status 0 whatever the
results: the caller compares the counts. A module that cannot be imported is reported as one
error with its exception.

`--socket-support`: CPython's test support says WASI has no sockets
(`test.support.has_socket_support` is false there), which skips whole modules (test_asyncio,
test_socket) before a test runs. The wasm CPython here has `socket.socketpair()` and
asyncio's event loop, so this flag sets it true to run them; tests that need a real network
then fail with the `OSError` WASI gives, and the comparison says which.
"""

import io
import sys
import unittest


def run(name):
    loader = unittest.TestLoader()
    try:
        suite = loader.loadTestsFromName(name)
    except Exception as e:  # the import itself failed: report it, go on
        print(f"{name} run=0 failures=0 errors=1 skipped=0")
        print(f"  IMPORT {type(e).__name__}: {e}")
        return
    # Not os.devnull: a WASI guest has no /dev unless the host maps one.
    stream = io.StringIO() if "-q" in sys.argv else sys.stderr
    result = unittest.TextTestRunner(stream=stream, verbosity=0).run(suite)
    print(f"{name} run={result.testsRun} failures={len(result.failures)} errors={len(result.errors)} skipped={len(result.skipped)}")
    for what, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, trace in items:
            last = trace.strip().splitlines()[-1] if trace.strip() else ""
            print(f"  {what} {test.id()}: {last[:300]}")
    if "--skips" in sys.argv:
        for test, reason in result.skipped:
            print(f"  SKIP {test.id()}: {reason[:300]}")
    sys.stdout.flush()


if __name__ == "__main__":
    if "--socket-support" in sys.argv:
        import test.support

        test.support.has_socket_support = True
    for module in [a for a in sys.argv[1:] if not a.startswith("-")]:
        run(module)
