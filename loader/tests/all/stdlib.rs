//! The wasm CPython's optional standard-library modules (`_lzma`, `_bz2`, `_sqlite3`,
//! `_socket`, `mmap`), side modules in its lib-dynload built by `pymode python`
//! (`pymode_build::stdlib`): each imports from there and does a real round trip; asyncio's
//! event loop runs over the loader's virtual socket pairs; hypothesis runs. With
//! `PYMODE_FULL=1`, CPython's own tests of them run too: `test_lzma`, `test_bz2`, `test_mmap`,
//! `test_json`, every `test_sqlite3` submodule but `test_transactions`, and the
//! `test_asyncio` modules that need neither threads, processes nor a network.
//!
//! `cargo xtask test` builds the prerequisites first; without them these tests fail and say so.

use crate::e2e_cpython::pymode_run_args as pymode_run;
use pymode_testdata::HYPOTHESIS;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        lzma_bz2_and_sqlite3_import_from_lib_dynload_and_round_trip,
        cpython_own_tests_of_the_side_modules_pass_in_wasm,
        socketpair_carries_bytes_and_what_wasi_cannot_do_raises_oserror,
        asyncio_event_loop_runs_sleeps_tasks_gather_timeouts_queues_and_locks,
        hypothesis_given_runs_and_shrinks_in_wasm,
        mmap_anonymous_and_file_backed_maps_write_back,
    ]
}

const ROUND_TRIPS: &str = r#"
import os, lzma, bz2, sqlite3, _lzma, _bz2, _sqlite3
for m in (_lzma, _bz2, _sqlite3):
    print("file", m.__file__)
data = bytes(range(256)) * 400 + b"pymode " * 1000
for name, mod in (("lzma", lzma), ("bz2", bz2)):
    packed = mod.compress(data)
    assert mod.decompress(packed) == data and len(packed) < len(data) // 4, name
    path = f"/tmp/x.{name}"
    with mod.open(path, "wb") as f:
        f.write(data)
    with mod.open(path, "rb") as f:
        assert f.read() == data, name
    print("round trip", name, len(packed))
for db in (":memory:", "/tmp/x.db"):
    con = sqlite3.connect(db)
    con.execute("create table t(k integer primary key, v text)")
    con.executemany("insert into t(v) values (?)", [(str(i),) for i in range(1000)])
    con.commit()
    con.close() if db != ":memory:" else None
    con = sqlite3.connect(db) if db != ":memory:" else con
    count, total = con.execute("select count(*), sum(cast(v as integer)) from t").fetchone()
    assert (count, total) == (1000, 499500), (count, total)
    print("round trip sqlite3", db, count, total)
print("sqlite", sqlite3.sqlite_version)
"#;

fn lzma_bz2_and_sqlite3_import_from_lib_dynload_and_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let out = pymode_run(&[(tmp.path().to_path_buf(), "/tmp")], &[], &["-c", ROUND_TRIPS]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let dynload = pymode_testdata::cpython_prefix().join("lib/python3.13/lib-dynload");
    for module in ["_lzma", "_bz2", "_sqlite3"] {
        let want = format!("file {}/{module}.cpython-313-wasm32-wasi.so", dynload.display());
        assert!(stdout.lines().any(|l| l == want), "{want} not in:\n{stdout}");
    }
    for line in ["round trip sqlite3 :memory: 1000 499500", "round trip sqlite3 /tmp/x.db 1000 499500", "sqlite 3.46.1"] {
        assert!(stdout.lines().any(|l| l == line), "{line} not in:\n{stdout}");
    }
    assert_eq!(stdout.lines().filter(|l| l.starts_with("round trip")).count(), 4, "{stdout}");
}

/// `PYMODE_FULL` set to anything but empty or `0`.
fn full() -> bool {
    std::env::var_os("PYMODE_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The `test_sqlite3` submodules run: all but `test_transactions`, left out for 7 tests that
/// open one file with two connections: the default unix VFS's locking fails under WASI
/// ("database is locked"; see docs/stdlib.md).
const SQLITE3_SUBMODULES: &[&str] = &[
    "test_backup",
    "test_cli",
    "test_dbapi",
    "test_dump",
    "test_factory",
    "test_hooks",
    "test_regression",
    "test_types",
    "test_userfunctions",
];

/// The `test_asyncio` modules that pass whole in wasm; the others need threads, processes,
/// signals or a real network, each counted and explained in docs/stdlib.md.
const ASYNCIO_MODULES: &[&str] = &[
    "test_context",
    "test_eager_task_factory",
    "test_futures2",
    "test_locks",
    "test_pep492",
    "test_protocols",
    "test_queues",
    "test_runners",
    "test_staggered",
    "test_taskgroups",
    "test_timeouts",
    "test_transports",
    "test_waitfor",
];

fn cpython_own_tests_of_the_side_modules_pass_in_wasm() {
    if !full() {
        println!("stdlib: PYMODE_FULL not set: CPython's tests of the side modules not run");
        return;
    }
    let source = pymode_testdata::cache_dir().join("cpython/src");
    let lib = std::fs::read_dir(&source)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("Lib")))
        .find(|p| p.join("test/test_lzma.py").is_file())
        .unwrap_or_else(|| panic!("no Python-3.13.*/Lib/test in {}", source.display()));
    let tmp = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = ["test.test_lzma", "test.test_bz2", "test.test_mmap", "test.test_json"].map(str::to_owned).into();
    names.extend(SQLITE3_SUBMODULES.iter().map(|m| format!("test.test_sqlite3.{m}")));
    names.extend(ASYNCIO_MODULES.iter().map(|m| format!("test.test_asyncio.{m}")));
    // The tests write their files (TESTFN) in the current directory: a scratch one. CPython's
    // test support says WASI has no sockets and would skip test_asyncio whole; this CPython
    // has socket pairs, which is what these modules use.
    let script = format!(
        "import os, unittest, test.support; test.support.has_socket_support = True; os.chdir('/work'); \
         unittest.main(module=None, argv=['unittest', {}])",
        names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    );
    let out =
        pymode_run(&[(lib, "/srclib"), (tmp.path().to_path_buf(), "/work")], &["PYTHONPATH=/srclib", "TMPDIR=/work"], &["-c", &script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstderr:\n{stderr}", out.status);
    assert!(stderr.lines().any(|l| l.starts_with("OK")), "{stderr}");
}

const SOCKETS: &str = r#"
import errno, select, socket, _socket
print("file", _socket.__file__)
a, b = socket.socketpair()
assert b.fileno() == a.fileno() + 1, (a, b)
a.sendall(b"ping" * 1000)
got = b""
while len(got) < 4000:
    got += b.recv(1500)
assert got == b"ping" * 1000
b.send(b"pong")
assert a.recv(10, socket.MSG_PEEK) == b"pong" and a.recv(10) == b"pong"
print("round trip socketpair")
b.setblocking(False)
try:
    b.recv(1)
except BlockingIOError as e:
    print("empty nonblocking recv", errno.errorcode[e.errno])
p = select.poll()
p.register(b, select.POLLIN)
assert p.poll(5) == []
a.send(b"!")
assert p.poll(5) == [(b.fileno(), select.POLLIN)], p.poll(0)
assert b.recv(1) == b"!"
b.settimeout(0.02)
try:
    b.recv(1)
except TimeoutError:
    print("recv timed out")
a.shutdown(socket.SHUT_WR)
assert b.recv(1) == b""
a.close()
try:
    b.send(b"x")
except BrokenPipeError as e:
    print("send to a closed peer", e.errno == errno.EPIPE)
b.close()
for what, call in [
    ("socket()", lambda: socket.socket()),
    ("connect", lambda: socket.create_connection(("127.0.0.1", 80))),
    ("getaddrinfo", lambda: socket.getaddrinfo("example.org", 80)),
    ("gethostbyname", lambda: socket.gethostbyname("example.org")),
]:
    try:
        call()
    except OSError as e:
        print(what, "raises", type(e).__name__, errno.errorcode.get(e.errno, e.errno))
print("hostname", socket.gethostname())
"#;

fn socketpair_carries_bytes_and_what_wasi_cannot_do_raises_oserror() {
    let out = pymode_run(&[], &[], &["-c", SOCKETS]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let dynload = pymode_testdata::cpython_prefix().join("lib/python3.13/lib-dynload");
    let want_file = format!("file {}/_socket.cpython-313-wasm32-wasi.so", dynload.display());
    let want = [
        want_file.as_str(),
        "round trip socketpair",
        "empty nonblocking recv EAGAIN",
        "recv timed out",
        "send to a closed peer True",
        // CPython's own stub for socket() on WASI, and the shim's answers.
        "socket() raises OSError ENOTSUP",
        "connect raises gaierror -4",
        "getaddrinfo raises gaierror -4",
        "gethostbyname raises gaierror -4",
        "hostname localhost",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "stderr:\n{stderr}");
}

const ASYNCIO: &str = r#"
import asyncio, time

async def produce(q, n):
    for i in range(n):
        await q.put(i)
        await asyncio.sleep(0.01)
    await q.put(None)

async def count(lock, shared, n):
    for _ in range(n):
        async with lock:
            v = shared[0]
            await asyncio.sleep(0)
            shared[0] = v + 1

async def main():
    t0 = time.monotonic()
    await asyncio.sleep(0.05)
    slept = time.monotonic() - t0
    print("slept at least 50 ms", slept >= 0.05)
    q = asyncio.Queue()
    producer = asyncio.create_task(produce(q, 5))
    got = []
    while (item := await q.get()) is not None:
        got.append(item)
    await producer
    print("queue", got)
    print("gather", await asyncio.gather(asyncio.sleep(0.03, "slow"), asyncio.sleep(0.01, "fast")))
    try:
        await asyncio.wait_for(asyncio.sleep(10), 0.05)
    except TimeoutError:
        print("wait_for timed out")
    lock, shared = asyncio.Lock(), [0]
    await asyncio.gather(*(count(lock, shared, 100) for _ in range(5)))
    print("lock", shared[0])
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.call_soon_threadsafe(done.set)
    await done.wait()
    print("call_soon_threadsafe woke the loop")
    return time.monotonic() - t0

elapsed = asyncio.run(main())
print("under 5 s", elapsed < 5)
"#;

fn asyncio_event_loop_runs_sleeps_tasks_gather_timeouts_queues_and_locks() {
    let out = pymode_run(&[], &[], &["-c", ASYNCIO]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let want = [
        "slept at least 50 ms True",
        "queue [0, 1, 2, 3, 4]",
        "gather ['slow', 'fast']",
        "wait_for timed out",
        "lock 500",
        "call_soon_threadsafe woke the loop",
        "under 5 s True",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "stderr:\n{stderr}");
}

const GIVEN: &str = r#"
import unittest.mock, hypothesis
from hypothesis import given, settings, strategies as st
runs = []
@settings(max_examples=100, database=None, deadline=None)
@given(st.lists(st.integers()), st.text())
def test_roundtrips(xs, s):
    runs.append(1)
    assert sorted(sorted(xs)) == sorted(xs)
    assert s.encode("utf-8").decode("utf-8") == s
test_roundtrips()
print("examples", len(runs))
@settings(max_examples=500, database=None, deadline=None)
@given(st.integers())
def test_small(n):
    assert n < 1000
try:
    test_small()
except AssertionError:
    print("falsified")
"#;

fn hypothesis_given_runs_and_shrinks_in_wasm() {
    // Pure Python: installed once by the native CPython's pip, like pytest for the suites.
    let site = pymode_testdata::cache_dir().join("wasm-site").join(HYPOTHESIS.replace("==", "-"));
    if !site.join("hypothesis/__init__.py").is_file() {
        let native = pymode_testdata::cache_dir().join("cpython/native/bin/python3.13");
        let mut pip = std::process::Command::new(native);
        pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]).arg(&site).arg(HYPOTHESIS);
        pymode_testdata::run_ok(&mut pip);
    }
    let out = pymode_run(&[(site, "/site")], &["PYTHONPATH=/site"], &["-c", GIVEN]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["examples 100", "falsified"], "stderr:\n{stderr}");
}

const MMAP: &str = r#"
import mmap
print("file", mmap.__file__)
m = mmap.mmap(-1, 13)
m.write(b"Hello world!\n")
m[0:5] = b"HELLO"
print("anonymous", m[:], m.find(b"world", 0), len(m))
m.close()
path = "/tmp/mm.dat"
with open(path, "wb") as f:
    f.write(b"abcdefghij" * 1000)
with open(path, "r+b") as f:
    mm = mmap.mmap(f.fileno(), 0)
    print("file map", mm.size(), mm.find(b"j", 5), mm.rfind(b"abc"), mm[10:13])
    mm[0:3] = b"XYZ"
    mm[-3:] = b"END"
    mm.flush()
    with open(path, "rb") as g:
        data = g.read()
        print("after flush", data[:5], data[-5:])
    mm[5:8] = b"123"
    mm.close()
    f.seek(0)
    print("descriptor still open", f.read(3))
with open(path, "rb") as g:
    data = g.read()
    print("after close", data[:10], len(data))
with open(path, "r+b") as f:
    cp = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    cp[0:3] = b"zzz"
    cp.flush()
    cp.close()
with open(path, "rb") as g:
    print("copy not written back", g.read(3))
# The map outlives its descriptor (the loader's alias keeps the file open for it).
f = open(path, "r+b")
mm = mmap.mmap(f.fileno(), 0)
f.close()
mm[-3:] = b"EOF"
mm.flush()
mm.close()
with open(path, "rb") as g:
    print("written after the file was closed", g.read()[-3:])
"#;

fn mmap_anonymous_and_file_backed_maps_write_back() {
    let tmp = tempfile::tempdir().unwrap();
    let out = pymode_run(&[(tmp.path().to_path_buf(), "/tmp")], &[], &["-c", MMAP]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let dynload = pymode_testdata::cpython_prefix().join("lib/python3.13/lib-dynload");
    let want_file = format!("file {}/mmap.cpython-313-wasm32-wasi.so", dynload.display());
    let want = [
        want_file.as_str(),
        "anonymous b'HELLO world!\\n' 6 13",
        "file map 10000 9 9990 b'abc'",
        "after flush b'XYZde' b'fgEND'",
        "descriptor still open b'XYZ'",
        "after close b'XYZde123ij' 10000",
        "copy not written back b'XYZ'",
        "written after the file was closed b'EOF'",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "stderr:\n{stderr}");
    let file = std::fs::read(tmp.path().join("mm.dat")).unwrap();
    assert_eq!(file.len(), 10000);
    assert!(file.starts_with(b"XYZde123ij") && file.ends_with(b"EOF"));
}
