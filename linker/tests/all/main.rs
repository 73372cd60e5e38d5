//! The linker's integration tests: one binary (wasmtime is linked once), one module per topic,
//! one trial per test and per fixture or catalogue case (see `pymode_testdata::trials`).
//! `cargo test -p pymode-linker --test all -- --list` names them; a name or part of one runs
//! just those (`-- golden::pymode-ld::pic-O2/aligned`, `-- bad_catalogue::`).

mod bad_catalogue;
mod behaviour;
mod common;
mod differential;
mod errors;
mod features;
mod golden;
mod inputs;
mod markupsafe;
mod pic_rewrite;
mod readobj;
mod robustness;

fn main() -> std::process::ExitCode {
    pymode_testdata::trials::run(
        env!("CARGO_MANIFEST_DIR"),
        pymode_testdata::modules![
            bad_catalogue,
            behaviour,
            differential,
            errors,
            features,
            golden,
            inputs,
            markupsafe,
            pic_rewrite,
            readobj,
            robustness,
        ],
        &["common", "common/differential"],
    )
}
