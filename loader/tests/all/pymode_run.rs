//! `pymode-run` end to end: a WASI main module (WAT) that loads a side module through the
//! `pymode.*` imports from a `--dir` preopen, and exits with what it computed.
#![allow(clippy::result_large_err)]

use pymode_testdata::trials::Trial;
use std::process::Command;

use crate::common::{ALLOCATOR, dylink, side, side_wat};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        loads_a_side_module_from_a_preopened_dir,
        a_refused_path_reaches_the_guest_through_dl_error,
        plain_wasi_module_runs_with_args_env_and_exit_code,
        usage_errors_exit_2,
        signature_mismatch_trap_gets_a_hint,
    ]
}

const RUN: &str = env!("CARGO_BIN_EXE_pymode-run");

/// `_start` opens the path at 2048 (length at 2040), calls `side_fn` through its slot and
/// exits with the result; on failure it writes dl_error's message to stderr and exits 1.
fn main_module(path: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "pymode" "dl_open" (func $dl_open (param i32 i32) (result i32)))
  (import "pymode" "dl_sym" (func $dl_sym (param i32 i32 i32) (result i32)))
  (import "pymode" "dl_error" (func $dl_error (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (table (export "__indirect_function_table") 1 funcref)
  (global (export "__stack_pointer") (mut i32) (i32.const 60000))
  {ALLOCATOR}
  (data (i32.const 2048) "{path}")
  (data (i32.const 2200) "side_fn")
  (type $v_i (func (result i32)))
  (func (export "_start")
    (local $h i32)
    i32.const 2048 i32.const {len} call $dl_open local.tee $h
    i32.const -1 i32.eq
    if
      i32.const 2900 i32.const 3000 i32.store
      i32.const 2904 i32.const 3000 i32.const 500 call $dl_error i32.store
      i32.const 2 i32.const 2900 i32.const 1 i32.const 2952 call $fd_write drop
      i32.const 1 call $proc_exit
    end
    local.get $h i32.const 2200 i32.const 7 call $dl_sym
    call_indirect (type $v_i)
    call $proc_exit))"#,
        len = path.len()
    )
}

fn side_module() -> Vec<u8> {
    side(&dylink(16, 2, 1), &side_wat(r#"(func $f (export "side_fn") (result i32) i32.const 100) (elem (global.get $tb) func $f)"#))
}

fn loads_a_side_module_from_a_preopened_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::write(lib.join("a.so"), side_module()).unwrap();
    let main = tmp.path().join("main.wasm");
    std::fs::write(&main, wat::parse_str(main_module("/lib/a.so")).unwrap()).unwrap();
    let cache = tmp.path().join("cache");
    for _ in 0..2 {
        let out =
            Command::new(RUN).arg("--dir").arg(format!("{}::/lib", lib.display())).arg("--cache").arg(&cache).arg(&main).output().unwrap();
        assert_eq!(out.status.code(), Some(100), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The disk cache holds the main and the side module.
    let entries = std::fs::read_dir(&cache).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"));
    assert_eq!(entries.count(), 2);
}

fn a_refused_path_reaches_the_guest_through_dl_error() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main.wasm");
    std::fs::write(&main, wat::parse_str(main_module("/lib/../../etc/passwd")).unwrap()).unwrap();
    let out = Command::new(RUN).arg("--dir").arg(format!("{}::/lib", tmp.path().display())).arg(&main).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/lib/../../etc/passwd") && stderr.contains("outside the library roots"), "{stderr}");
}

fn plain_wasi_module_runs_with_args_env_and_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("hello.wasm");
    // Prints "hi\n", exits with argc * 10 + number of env vars.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_sizes_get" (func $envs (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 100) "hi\n")
      (func (export "_start")
        i32.const 0 i32.const 100 i32.store
        i32.const 4 i32.const 3 i32.store
        i32.const 1 i32.const 0 i32.const 1 i32.const 8 call $fd_write drop
        i32.const 16 i32.const 20 call $args drop
        i32.const 24 i32.const 28 call $envs drop
        i32.const 16 i32.load i32.const 10 i32.mul i32.const 24 i32.load i32.add
        call $proc_exit))"#;
    std::fs::write(&main, wat::parse_str(wat).unwrap()).unwrap();
    let out = Command::new(RUN).args(["--env", "A=1", "--env", "B=2"]).arg(&main).args(["--", "x", "y"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{} {:?}", String::from_utf8_lossy(&out.stderr), out.status);
    assert_eq!(out.status.code(), Some(32), "{}", String::from_utf8_lossy(&out.stderr));
}

fn usage_errors_exit_2() {
    let out = Command::new(RUN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: pymode-run"));
}

fn signature_mismatch_trap_gets_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("bad.wasm");
    // Calls a (param i32) function through a () -> () pointer.
    let wat = r#"(module
      (memory (export "memory") 1)
      (table 1 funcref)
      (type $v (func))
      (func $one (param i32))
      (elem (i32.const 0) $one)
      (func (export "_start") i32.const 0 call_indirect (type $v)))"#;
    std::fs::write(&main, wat::parse_str(wat).unwrap()).unwrap();
    let out = Command::new(RUN).arg(&main).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(stderr.contains("hint: a function was called through a pointer of a different type"), "{stderr}");
}
