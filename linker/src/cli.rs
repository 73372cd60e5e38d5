//! The `pymode-ld` command line, shared by the `pymode-ld` binary and the `pymode` tool (which
//! acts as the linker when started under that name). Diagnostics are printed as lld prints
//! them: `pymode-ld: error: ...` and `pymode-ld: warning: ...`.

use crate::options::{Options, USAGE, VERSION};
use std::process::ExitCode;

/// Parses `args` (without the program name), links, and says what went wrong on stderr.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let (opts, warnings) = match Options::parse(args) {
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
    match crate::link(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pymode-ld: error: {e}");
            ExitCode::FAILURE
        }
    }
}
