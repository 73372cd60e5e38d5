//! The loader's integration tests: one binary (wasmtime is linked once), one module per topic,
//! one trial per test and per fixture, catalogue or package case (see
//! `pymode_testdata::trials`). `cargo test -p pymode-loader --test all -- --list` names them;
//! a name or part of one runs just those (`-- fixtures::bss_is_zero_after_a_dirty_heap::`,
//! `-- bad_catalogue::side-modules::`). The WAT side-module tests are split by topic: symbols,
//! transactions, layout, attach, policy, needed, rtld, dtors and host_imports.
#![allow(clippy::result_large_err)]

mod attach;
mod bad_catalogue;
mod c_main;
mod cache;
mod common;
mod ctypes;
mod cxx;
mod dtors;
mod e2e_cpython;
mod features;
mod fixtures;
mod host_imports;
mod layout;
mod libs;
mod needed;
mod packages;
mod policy;
mod pymode_run;
mod recursion;
mod rtld;
mod soak;
mod staticlib;
mod stdlib;
mod symbols;
mod transactions;

fn main() -> std::process::ExitCode {
    pymode_testdata::trials::run(
        env!("CARGO_MANIFEST_DIR"),
        pymode_testdata::modules![
            attach,
            bad_catalogue,
            c_main,
            cache,
            ctypes,
            cxx,
            dtors,
            e2e_cpython,
            features,
            fixtures,
            host_imports,
            layout,
            needed,
            packages,
            policy,
            pymode_run,
            recursion,
            rtld,
            soak,
            staticlib,
            stdlib,
            symbols,
            transactions,
        ],
        &["common", "libs"],
    )
}
