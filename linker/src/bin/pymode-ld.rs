//! `pymode-ld`: the command-line linker. Diagnostics are printed as lld prints them:
//! `pymode-ld: error: ...` and `pymode-ld: warning: ...`.

use pymode_linker::options::{Options, USAGE, VERSION};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (opts, warnings) = match Options::parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("pymode-ld: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &warnings {
        eprintln!("pymode-ld: warning: {warning}");
    }
    if opts.version {
        println!("{VERSION}");
        return ExitCode::SUCCESS;
    }
    if opts.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match pymode_linker::link(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pymode-ld: error: {e}");
            ExitCode::FAILURE
        }
    }
}
