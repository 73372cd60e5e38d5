//! End to end: the zig-built CPython 3.13 main module runs under `pymode-run`, imports
//! markupsafe with its C speedups linked by `pymode-ld`, and turns a side module with a
//! missing symbol into an ImportError that names it, then keeps running.
//!
//! `cargo xtask test` builds the prerequisites first (`cargo xtask cpython`,
//! `cargo xtask build-ext markupsafe`); without them these tests fail and say so.

use pymode_testdata::trials::Trial;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        markupsafe_imports_its_c_speedups_in_wasm_cpython,
        zlib_and_gzip_work_in_wasm_cpython,
        os_dup_gives_an_alias_that_shares_the_offset_and_outlives_the_original,
        one_read_larger_than_wasmtimes_default_copy_allowance_succeeds,
        directory_listings_are_whole_and_fresh,
        a_missing_symbol_is_an_import_error_naming_it_and_python_keeps_running,
        functions_called_through_pointers_of_another_type_get_the_arguments_they_take,
        markupsafe_own_test_suite_passes_with_speedups_linked_by_pymode_ld,
        markupsafe_own_test_suite_passes_with_speedups_linked_by_wasm_ld,
        markupsafe_own_test_suite_passes_with_speedups_built_without_fpic,
    ]
}

fn pymode_run(dirs: &[(PathBuf, &str)], env: &[&str], script: &str) -> Output {
    pymode_run_args(dirs, env, &["-c", script])
}

pub(crate) fn pymode_run_args(dirs: &[(PathBuf, &str)], env: &[&str], args: &[&str]) -> Output {
    let prefix = pymode_testdata::cpython_prefix();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pymode-run"));
    cmd.arg("--dir").arg(&prefix);
    for (host, guest) in dirs {
        cmd.arg("--dir").arg(format!("{}::{guest}", host.display()));
    }
    for e in env {
        cmd.args(["--env", e]);
    }
    cmd.arg("--cache").arg(pymode_testdata::cache_dir().join("module-cache"));
    cmd.arg(pymode_testdata::python_wasm()).arg("--").args(args);
    cmd.output().expect("run pymode-run")
}

pub(crate) fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn markupsafe_imports_its_c_speedups_in_wasm_cpython() {
    let site = pymode_testdata::ext_site("markupsafe");
    let script = r#"
import markupsafe, markupsafe._speedups as sp
print("file", sp.__file__)
print("c-in-use", markupsafe._escape_inner is sp._escape_inner)
print("escape", markupsafe.escape('<a href="x">&\'</a>'))
print("format", markupsafe.Markup("<b>%s</b>") % "<i>")
print("soft", markupsafe.soft_str(42), type(markupsafe.escape_silent(None)).__name__)
"#;
    let out = pymode_run(&[(site, "/site")], &["PYTHONPATH=/site"], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "file /site/markupsafe/_speedups.cpython-313-wasm32-wasi.so",
            "c-in-use True",
            "escape &lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;",
            "format <b>&lt;i&gt;</b>",
            "soft 42 Markup",
        ],
        "stderr:\n{stderr}"
    );
}

/// The wasm CPython has `zlib` (linked from `cargo xtask staticlib zlib`), so gzip, zipfile
/// and the packages that import them work.
fn zlib_and_gzip_work_in_wasm_cpython() {
    let script = r#"
import zlib, gzip, binascii
data = bytes(range(256)) * 400
packed = zlib.compress(data, 9)
print("zlib", len(data), len(packed) < len(data) // 10, zlib.decompress(packed) == data)
print("gzip", gzip.decompress(gzip.compress(data)) == data)
print("crc32", zlib.crc32(data) == binascii.crc32(data), hex(zlib.crc32(b"123456789")))
"#;
    let out = pymode_run(&[], &[], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    // 0xcbf43926 is CRC-32's check value for "123456789".
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["zlib 102400 True True", "gzip True", "crc32 True 0xcbf43926"], "stderr:\n{stderr}");
}

/// `os.dup` (python.wasm's `dup`, over the host's aliases: `pymode_wasi_fixes.c`): the
/// alias shares the file's offset, is not inheritable, works for stdout, outlives the
/// descriptor it was made from, and a descriptor that is not open is `EBADF`, as natively.
fn os_dup_gives_an_alias_that_shares_the_offset_and_outlives_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let script = r#"
import errno, os, sys
f = open("/data/x.txt", "w+b")
f.write(b"hello world")
f.flush()
f.seek(3)
d = os.dup(f.fileno())
print("new descriptor", d != f.fileno(), "inheritable", os.get_inheritable(d))
print("shared offset", os.lseek(d, 0, os.SEEK_CUR))
os.lseek(d, 6, os.SEEK_SET)
print("moved through the alias", f.tell())
f.close()
print("after the original closed", os.pread(d, 5, 0))
os.close(d)
for bad in (d, 12345):
    try:
        os.dup(bad)
        print("dup of a closed descriptor succeeded")
    except OSError as e:
        print("dup of a closed descriptor", errno.errorcode[e.errno])
sys.stdout.flush()
out = os.dup(1)
os.write(out, b"written through an alias of stdout\n")
os.close(out)
"#;
    let out = pymode_run(&[(tmp.path().to_path_buf(), "/data")], &[], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let want = [
        "new descriptor True inheritable False",
        "shared offset 3",
        "moved through the alias 6",
        "after the original closed b'hello'",
        "dup of a closed descriptor EBADF",
        "dup of a closed descriptor EBADF",
        "written through an alias of stdout",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "stderr:\n{stderr}");
}

/// wasmtime lets one WASI call copy 128 MiB by default; the runner raises that to the
/// guest's memory (`pymode_loader::run::hostcall_fuel`), so `read()` of a larger file works
/// as natively instead of raising `OSError: [Errno 48] Out of memory`.
fn one_read_larger_than_wasmtimes_default_copy_allowance_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let size = 129 << 20;
    let file = std::fs::File::create(tmp.path().join("big.bin")).unwrap();
    file.set_len(size).unwrap();
    drop(file);
    let script = "data = open('/data/big.bin', 'rb').read(); print(len(data), data.count(0) == len(data))";
    let out = pymode_run(&[(tmp.path().to_path_buf(), "/data")], &[], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert_eq!(stdout.trim(), format!("{size} True"), "stderr:\n{stderr}");
}

/// `fd_readdir` answers continuation calls from the listing it fetched for cookie 0
/// (`loader/src/socketpair/readdir.rs`): a directory of many buffers lists whole, two
/// listings read in turns do not mix, and a listing started after a change sees it.
fn directory_listings_are_whole_and_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big");
    std::fs::create_dir_all(big.join("sub")).unwrap();
    // 600 names of 40 bytes: about 38 KB of entries, ten of wasi-libc's 4 KiB buffers.
    for i in 0..600 {
        std::fs::write(big.join(format!("{i:0>36}.txt")), b"").unwrap();
    }
    for i in 0..300 {
        std::fs::write(big.join("sub").join(format!("s{i:0>35}.txt")), b"").unwrap();
    }
    let script = r#"
import os
names = os.listdir("/big")
print("count", len(names), len(set(names)), sorted(names) == sorted(["%036d.txt" % i for i in range(600)] + ["sub"]))
it = os.scandir("/big")
first = [next(it).name for _ in range(250)]
sub = os.listdir("/big/sub")
rest = [e.name for e in it]
it.close()
print("interleaved", len(sub), sorted(first + rest) == sorted(names))
open("/big/new.txt", "w").close()
print("fresh", "new.txt" in os.listdir("/big"), len(os.listdir("/big")))
"#;
    let out = pymode_run(&[(big, "/big")], &[], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["count 601 601 True", "interleaved 300 True", "fresh True 602"], "stderr:\n{stderr}");
}

fn a_missing_symbol_is_an_import_error_naming_it_and_python_keeps_running() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-missing-symbol");
    let site = build_extension(
        &dir,
        "_broken",
        r#"#include <Python.h>
extern int pymode_test_missing_symbol(int);
static PyObject *call(PyObject *self, PyObject *arg) { return PyLong_FromLong(pymode_test_missing_symbol(1)); }
static PyMethodDef methods[] = {{"call", call, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_broken", NULL, -1, methods};
PyMODINIT_FUNC PyInit__broken(void) { return PyModule_Create(&def); }
"#,
    );

    let script = r#"
try:
    import _broken
    print("imported?!")
except ImportError as e:
    print("ImportError:", e)
print("still running", 6 * 7)
"#;
    let out = pymode_run(&[(site, "/site")], &["PYTHONPATH=/site"], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let error_line =
        stdout.lines().find(|l| l.starts_with("ImportError:")).unwrap_or_else(|| panic!("no ImportError in:\n{stdout}\n{stderr}"));
    assert!(error_line.contains("pymode_test_missing_symbol"), "{error_line}");
    assert!(stdout.lines().any(|l| l == "still running 42"), "{stdout}");
}

/// Compiles `source` (one C file) with zig `-fPIC` against the wasm CPython's headers and
/// links it with pymode-ld into `site/<module>.cpython-313-wasm32-wasi.so`.
fn build_extension(dir: &Path, module: &str, source: &str) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("tmp dir");
    let c_file = dir.join(format!("{module}.c"));
    std::fs::write(&c_file, source).expect("write source");
    let object = dir.join(format!("{module}.o"));
    let include = pymode_testdata::cpython_prefix().join("include").join("python3.13");
    let status = pymode_testdata::zig_cc()
        .args(["-fPIC", "-O2", "-g0", "-c", "-Wno-cast-function-type"])
        .arg("-I")
        .arg(&include)
        .arg(&c_file)
        .arg("-o")
        .arg(&object)
        .status()
        .expect("run zig cc");
    assert!(status.success());
    let site = dir.join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    let out = site.join(format!("{module}.cpython-313-wasm32-wasi.so"));
    let args = ["-shared".to_owned(), object.display().to_string(), "-o".to_owned(), out.display().to_string()];
    let (opts, warnings) = pymode_linker::Options::parse(args).expect("linker options");
    assert!(warnings.is_empty(), "{warnings:?}");
    pymode_linker::link(&opts).expect("link");
    assert!(out.is_file(), "{} was not written", out.display());
    site
}

/// C extensions store functions in slots of another type and rely on native ABIs ignoring
/// the extra argument: a getter without its `closure`, a `METH_NOARGS` method without its
/// unused argument, a setter through a cast. wasm's call_indirect would trap on each; the
/// wasm CPython's call trampoline asks the loader (`pymode.fn_arity`) and passes only the
/// arguments the function takes. regex's `Pattern.groupindex` is such a getter. A `tp_clear`
/// declared `void` (kiwisolver's) is called by the collector through the same trampoline.
fn functions_called_through_pointers_of_another_type_get_the_arguments_they_take() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-fpcast");
    let site = build_extension(
        &dir,
        "_fpcast",
        r#"#include <Python.h>
typedef struct { PyObject_HEAD long value; } Box;
/* A getter without its `void *closure` parameter, as regex declares some of its own. */
static PyObject *box_doubled(Box *self) { return PyLong_FromLong(self->value * 2); }
static PyObject *box_value(Box *self, void *closure) { return PyLong_FromLong(self->value); }
static int box_set(Box *self, PyObject *v, void *closure) { self->value = PyLong_AsLong(v); return 0; }
/* METH_NOARGS without the unused second parameter. */
static PyObject *box_negate(Box *self) { self->value = -self->value; Py_RETURN_NONE; }
static PyGetSetDef getset[] = {
    {"doubled", (getter)box_doubled, NULL, NULL, NULL},
    {"value", (getter)box_value, (setter)box_set, NULL, NULL},
    {NULL},
};
static PyMethodDef methods[] = {{"negate", (PyCFunction)box_negate, METH_NOARGS, NULL}, {NULL}};
static PyTypeObject BoxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_fpcast.Box", .tp_basicsize = sizeof(Box), .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew, .tp_getset = getset, .tp_methods = methods,
};
/* A container whose tp_clear is declared void and cast into the inquiry slot. */
typedef struct { PyObject_HEAD PyObject *other; } Node;
static int cleared;
static int node_traverse(Node *self, visitproc visit, void *arg) { Py_VISIT(self->other); return 0; }
static void node_clear(Node *self) { cleared++; Py_CLEAR(self->other); }
static void node_dealloc(Node *self) {
    PyObject_GC_UnTrack(self);
    node_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}
static PyMemberDef node_members[] = {{"other", Py_T_OBJECT_EX, offsetof(Node, other), 0, NULL}, {NULL}};
static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_fpcast.Node", .tp_basicsize = sizeof(Node),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)node_traverse, .tp_clear = (inquiry)node_clear,
    .tp_dealloc = (destructor)node_dealloc, .tp_members = node_members,
};
/* A module-level METH_NOARGS function declared with no parameters at all. */
static PyObject *answer(void) { return PyLong_FromLong(42); }
static PyObject *clear_count(PyObject *m, PyObject *unused) { return PyLong_FromLong(cleared); }
static PyMethodDef module_methods[] = {
    {"answer", (PyCFunction)answer, METH_NOARGS, NULL},
    {"clear_count", clear_count, METH_NOARGS, NULL},
    {NULL},
};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_fpcast", NULL, -1, module_methods};
PyMODINIT_FUNC PyInit__fpcast(void) {
    if (PyType_Ready(&BoxType) < 0 || PyType_Ready(&NodeType) < 0) return NULL;
    PyObject *m = PyModule_Create(&def);
    if (m) PyModule_AddObjectRef(m, "Box", (PyObject *)&BoxType);
    if (m) PyModule_AddObjectRef(m, "Node", (PyObject *)&NodeType);
    return m;
}
"#,
    );
    let script = r#"
import _fpcast
b = _fpcast.Box()
b.value = 21
print("value", b.value, "doubled", b.doubled)
b.negate()
print("negated", b.value, "answer", _fpcast.answer())
import gc
n = _fpcast.Node()
n.other = n
del n
# The collector clears the cycle once; the dealloc that follows clears again.
print("collected", gc.collect() >= 1, "cleared", _fpcast.clear_count())
"#;
    let out = pymode_run(&[(site, "/site")], &["PYTHONPATH=/site"], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["value 21 doubled 42", "negated -21 answer 42", "collected True cleared 2"],
        "stderr:\n{stderr}"
    );
}

/// Runs markupsafe's own test suite from its sdist inside wasm CPython against `site`, and
/// checks that every test parametrized over the C speedups ran and passed.
fn markupsafe_suite_passes(site: PathBuf, linked_by: &str) {
    let sources = pymode_testdata::ext_dir("markupsafe").join("src").join(format!("markupsafe-{}", pymode_testdata::MARKUPSAFE_VERSION));
    assert!(sources.join("tests").is_dir(), "markupsafe's tests are missing in {}", sources.display());
    // pytest needs a current directory it can chdir to and a /dev/null to open; WASI has
    // neither unless the host maps them.
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("wasm-root-{linked_by}"));
    std::fs::create_dir_all(root.join("dev")).expect("root dir");
    std::fs::write(root.join("dev").join("null"), b"").expect("dev/null");
    let dirs = [(root, "/"), (site, "/site"), (pymode_testdata::wasm_test_deps(), "/pydeps"), (sources, "/src")];
    // --capture=sys and no faulthandler: both need os.dup, which WASI does not have.
    let args = ["-m", "pytest", "/src/tests", "-p", "no:cacheprovider", "-p", "no:faulthandler", "--capture=sys", "-v", "-rs"];
    let out = pymode_run_args(&dirs, &["PYTHONPATH=/site:/pydeps"], &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "markupsafe's suite failed ({linked_by}): exit {:?}\n{stdout}\n{stderr}", out.status);
    let speedups: Vec<&str> = stdout.lines().filter(|l| l.contains("[markupsafe._speedups")).collect();
    // markupsafe 3.0.4 runs each of its 40 tests once per implementation.
    assert_eq!(speedups.len(), 40, "speedups tests that ran ({linked_by}):\n{stdout}");
    for line in &speedups {
        assert!(line.contains("PASSED"), "({linked_by}) {line}");
    }
    assert!(stdout.contains("test_ext_init[markupsafe._speedups] PASSED"), "{stdout}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains(" passed") && !summary.contains("failed") && !summary.contains("error"), "({linked_by}) {summary}");
}

fn markupsafe_own_test_suite_passes_with_speedups_linked_by_pymode_ld() {
    markupsafe_suite_passes(pymode_testdata::ext_site("markupsafe"), "pymode-ld");
}

fn markupsafe_own_test_suite_passes_with_speedups_linked_by_wasm_ld() {
    markupsafe_suite_passes(pymode_testdata::ext_site_wasm_ld("markupsafe"), "wasm-ld");
}

fn markupsafe_own_test_suite_passes_with_speedups_built_without_fpic() {
    let dir = pymode_testdata::ext_dir("markupsafe");
    // The suite must run over code pymode-ld rewrote: the object has to use absolute
    // addresses (MEMORY_ADDR_SLEB/LEB) and none of the PIC forms.
    let object = dir.join("_speedups-nopic.o");
    let bytes = std::fs::read(&object).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask build-ext markupsafe`", object.display()));
    let obj = pymode_abi::object::Object::parse("_speedups-nopic.o", &bytes).expect("parse the non-PIC object");
    let kinds: Vec<pymode_abi::RelocKind> = obj.relocations.iter().flat_map(|r| r.entries.iter().map(|e| e.kind)).collect();
    use pymode_abi::RelocKind::{GlobalIndexLeb, MemoryAddrLeb, MemoryAddrRelSleb, MemoryAddrSleb, TableIndexRelSleb};
    assert!(kinds.iter().any(|k| matches!(k, MemoryAddrSleb | MemoryAddrLeb)), "not a non-PIC object: {kinds:?}");
    assert!(!kinds.iter().any(|k| matches!(k, MemoryAddrRelSleb | TableIndexRelSleb | GlobalIndexLeb)), "PIC relocations in {kinds:?}");

    let site = dir.join("site-nopic");
    let module = |site: &Path| site.join("markupsafe").join("_speedups.cpython-313-wasm32-wasi.so");
    let nopic = std::fs::read(module(&site)).expect("the non-PIC side module");
    let pic = std::fs::read(module(&pymode_testdata::ext_site("markupsafe"))).expect("the PIC side module");
    // Rewritten code is not byte for byte the PIC build's, so an equal file means the wrong input.
    assert_ne!(nopic, pic, "site-nopic holds the PIC build's side module");
    markupsafe_suite_passes(site, "pymode-ld-nopic");
}
