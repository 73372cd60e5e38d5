//! C++ side modules: `testdata/cxx/cxx_user.cpp` (vector, string, unordered_map, a static
//! constructor and destructor, RTTI, virtual calls, std::mutex) compiled by `zig c++` with
//! and without `-fPIC`, linked by pymode-ld with the C++ runtime (`pymode_build::cxx`:
//! libc++ and libc++abi for wasm32-wasi, and the throw shim), dlopened by a C main module
//! under `pymode-run`. A `throw` ends the program with one line naming the exception type.

use pymode_testdata::trials::Trial;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        cxx_side_module_runs_with_pic,
        cxx_side_module_runs_without_pic,
        a_cxx_throw_ends_the_program_naming_the_exception_type,
        a_cxx_catch_never_runs_and_the_throw_still_ends_the_program,
    ]
}

const USER_SOURCE: &str = "testdata/cxx/cxx_user.cpp";
const MAIN_SOURCE: &str = "testdata/cxx/cxx_main.c";

/// What `cxx_checks` prints, then the main module's line, then the static destructor's.
const EXPECTED: &[&str] = &[
    "check static_ctor ran",
    "check static_value 42",
    "check vector_sum 338350",
    "check string wasm-0-7-14 11",
    "check map a=3 b=2 c=1 size=3",
    "check typeid_name N12_GLOBAL__N_16SquareE",
    "check typeid_eq 1 0",
    "check dynamic_cast 1 0",
    "check virtual 7",
    "checks 0",
    "check static_dtor ran",
];

/// The side module and the main module that loads it, built once per mode into
/// `dir/lib/cxx_user.so` and `dir/main.wasm`.
fn build(pic: bool) -> PathBuf {
    let tc = pymode_testdata::Toolchain::load().unwrap_or_else(|e| panic!("the toolchain is not provisioned (cargo xtask toolchain): {e}"));
    let runtime = pymode_testdata::cxx::build(&tc).unwrap_or_else(|e| panic!("building the C++ runtime: {e}"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(if pic { "cxx-pic" } else { "cxx-nonpic" });
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).expect("lib dir");
    let root = pymode_testdata::workspace_root();
    let object = dir.join("cxx_user.o");
    let mut cxx = tc.zig_command();
    cxx.args(["c++", "-target", "wasm32-wasi", "-O2", "-g0", "-c"]).args(pymode_testdata::cxx::THREADS_FLAGS);
    if pic {
        cxx.arg("-fPIC");
    }
    pymode_testdata::run_ok(cxx.arg(root.join(USER_SOURCE)).arg("-o").arg(&object));
    let side = lib.join("cxx_user.so");
    let args =
        ["-shared".to_owned(), object.display().to_string(), runtime.display().to_string(), "-o".to_owned(), side.display().to_string()];
    let (opts, warnings) = pymode_linker::Options::parse(args).expect("linker options");
    assert!(warnings.is_empty(), "{warnings:?}");
    pymode_linker::link(&opts).unwrap_or_else(|e| panic!("pymode-ld {}: {e}", object.display()));
    let exports = main_exports(&side);
    let exports: Vec<&str> = exports.iter().map(String::as_str).collect();
    pymode_testdata::run_ok(&mut pymode_testdata::c_main_module(&root.join(MAIN_SOURCE), &dir.join("main.wasm"), &exports));
    dir
}

/// What the side module imports from the main module: libc's functions and data, which the
/// main module must export.
fn main_exports(side: &Path) -> Vec<String> {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::from_file(&engine, side).unwrap_or_else(|e| panic!("{}: {e}", side.display()));
    let own = ["memory", "__indirect_function_table", "__stack_pointer", "__memory_base", "__table_base"];
    let mut names: Vec<String> = module
        .imports()
        .filter(|i| matches!(i.module(), "env" | "GOT.mem" | "GOT.func") && !own.contains(&i.name()))
        .map(|i| i.name().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pymode-run"))
        .arg("--dir")
        .arg(format!("{}::/lib", dir.join("lib").display()))
        .arg(dir.join("main.wasm"))
        .args(args)
        .output()
        .expect("run pymode-run")
}

fn runs(pic: bool) {
    let dir = build(pic);
    let out = run(&dir, &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), EXPECTED, "stderr:\n{stderr}");
}

fn cxx_side_module_runs_with_pic() {
    runs(true);
}

fn cxx_side_module_runs_without_pic() {
    runs(false);
}

fn ends_with_the_exception_message(mode: &str) {
    let dir = build(true);
    let out = run(&dir, &[mode]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(i32::from(pymode_loader::run::TRAP_EXIT_CODE)), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("FAIL"), "the call returned after the throw:\n{stdout}");
    assert!(stderr.contains("C++ exception of type std::out_of_range thrown: wasm32-wasi has no exception support"), "stderr:\n{stderr}");
}

fn a_cxx_throw_ends_the_program_naming_the_exception_type() {
    ends_with_the_exception_message("throw");
}

fn a_cxx_catch_never_runs_and_the_throw_still_ends_the_program() {
    ends_with_the_exception_message("try");
}
