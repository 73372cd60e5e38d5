//! `pymode-readobj FILE...`: prints each wasm object's or side module's model as stable text.
//! Exits 1 with a one-line error for a file that cannot be read as wasm.

use pymode_abi::object::Object;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!(
            "usage: pymode-readobj FILE...\n\nPrints the symbols, segments, init functions and relocations of a wasm32\nrelocatable object, or the dylink.0, imports and exports of a side module."
        );
        return if files.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    }
    let mut status = ExitCode::SUCCESS;
    for (i, path) in files.iter().enumerate() {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("pymode-readobj: error: {path}: {e}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        match Object::parse(path, &bytes) {
            Ok(obj) => {
                if i > 0 {
                    println!();
                }
                print!("{}", pymode_linker::readobj::describe(&obj));
            }
            Err(e) => {
                eprintln!("pymode-readobj: error: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
