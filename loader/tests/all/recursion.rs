//! Deep recursion through C in the wasm CPython ends in a `RecursionError`, not in a trap
//! that kills the interpreter: the wasm stack limit `pymode-run` uses by default
//! (`DEFAULT_MAX_WASM_STACK`) is well above what CPython's C recursion limit for WASI lets C
//! code use. Covered: the C json encoder and decoder, `repr` of nested lists, a Python
//! `__repr__` reached from C, and a side module's own C recursion and its calls back into
//! Python.

use crate::e2e_cpython::{pymode_run_args, text};
use crate::soak::{compile, link};
use pymode_testdata::trials::Trial;
use std::path::PathBuf;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![deep_recursion_through_c_raises_recursion_error_and_python_keeps_running, a_small_wasm_stack_traps_instead,]
}

const MODULE_SOURCE: &str = include_str!("../c/recurse_module.c");

/// Each case prints its name and what it raised; the last line says the interpreter is
/// still there. The shallow cases pin that the limit is not simply tiny.
const SCRIPT: &str = r#"
import sys, json, recurse
def nest(n):
    x = []
    for _ in range(n):
        x = [x]
    return x
class Node:
    def __init__(self, child): self.child = child
    def __repr__(self): return "(" + repr(self.child) + ")"
def chain(n):
    x = None
    for _ in range(n):
        x = Node(x)
    return x
def again():
    return recurse.call(again)
deep = nest(200_000)
cases = [
    ("json.dumps", lambda: json.dumps(deep)),
    ("json.loads", lambda: json.loads("[" * 200_000 + "]" * 200_000)),
    ("repr", lambda: repr(deep)),
    ("__repr__", lambda: repr(chain(200_000))),
    ("side-module-c", lambda: recurse.depth(deep)),
    ("side-module-callback", again),
]
print("shallow", len(json.dumps(nest(4000))), recurse.depth(nest(4000)))
sys.setrecursionlimit(10**6)
for name, case in cases:
    try:
        case()
        print(name, "returned")
    except RecursionError:
        print(name, "RecursionError")
print("alive", sys.getrecursionlimit())
"#;

/// The `recurse` extension, compiled by zig and linked by pymode-ld, in a site directory.
fn site() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("recursion");
    let site = dir.join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    let source = dir.join("recurse_module.c");
    let object = dir.join("recurse_module.o");
    std::fs::write(&source, MODULE_SOURCE).expect("write source");
    compile(&source, &object, &[]);
    link(&object, &site.join("recurse.cpython-313-wasm32-wasi.so"));
    site
}

fn deep_recursion_through_c_raises_recursion_error_and_python_keeps_running() {
    let out = pymode_run_args(&[(site(), "/site")], &["PYTHONPATH=/site"], &["-c", SCRIPT]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "shallow 8002 4001",
            "json.dumps RecursionError",
            "json.loads RecursionError",
            "repr RecursionError",
            "__repr__ RecursionError",
            "side-module-c RecursionError",
            "side-module-callback RecursionError",
            "alive 1000000",
        ],
        "stderr:\n{stderr}"
    );
}

/// The default stack limit is what turns the trap into an exception: with wasmtime's own
/// default-sized limit halved (256 KiB), the C json encoder runs out of wasm stack first
/// and the run ends in a trap, which `pymode-run` reports with the 134 exit code.
fn a_small_wasm_stack_traps_instead() {
    let script = "import json\nx = []\nfor _ in range(200_000): x = [x]\njson.dumps(x)\n";
    let out = small_stack_run(script);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(pymode_loader::run::TRAP_EXIT_CODE)), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("call stack exhausted"), "stderr:\n{stderr}");
}

fn small_stack_run(script: &str) -> std::process::Output {
    let prefix = pymode_testdata::cpython_prefix();
    std::process::Command::new(env!("CARGO_BIN_EXE_pymode-run"))
        .arg("--dir")
        .arg(&prefix)
        .args(["-W", "max-wasm-stack=262144"])
        .arg("--cache")
        .arg(pymode_testdata::cache_dir().join("module-cache"))
        .arg(pymode_testdata::python_wasm())
        .args(["--", "-c", script])
        .output()
        .expect("run pymode-run")
}
