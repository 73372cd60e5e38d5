//! `pymode-ld`: the command-line linker ([`pymode_linker::cli`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    pymode_linker::cli::main(std::env::args().skip(1))
}
