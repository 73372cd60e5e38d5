//! The fuzz crate's smoke tests: one binary (wasmtime is linked once), one module per topic,
//! one trial per test (see `pymode_testdata::trials`; `cargo test -p pymode-fuzz --test all --
//! --list` names them).

mod load_seeds;
mod mutator;
mod smoke;

fn main() -> std::process::ExitCode {
    pymode_testdata::trials::run(env!("CARGO_MANIFEST_DIR"), pymode_testdata::modules![load_seeds, mutator, smoke], &[])
}
