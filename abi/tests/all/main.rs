//! The abi crate's integration tests: one binary, one module per topic, one trial per test
//! (see `pymode_testdata::trials`; `cargo test -p pymode-abi --test all -- --list` names them).

mod bad_input;
mod c_shim;
mod comdat;

fn main() -> std::process::ExitCode {
    pymode_testdata::trials::run(env!("CARGO_MANIFEST_DIR"), pymode_testdata::modules![bad_input, c_shim, comdat], &[])
}
