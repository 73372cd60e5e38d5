//! The bodies of the fuzz targets, as plain functions, so that `cargo test` can replay the
//! seed corpora through exactly the code the fuzzer runs.

pub mod load;
pub mod mutate;

pub use load::load;

use std::path::PathBuf;

use pymode_abi::Dylink0;
use pymode_abi::object::Object;

/// Reads `data` as an object. Any result is fine; a panic, a hang or an error pointing
/// past the input is a bug.
pub fn parse_object(data: &[u8]) {
    match Object::parse("fuzz.o", data) {
        Ok(obj) => {
            // Walk what a consumer would index, so a dangling index shows up as a panic.
            for r in &obj.relocations {
                let target = obj.section(r.target).expect("validated target section");
                let contents = obj.contents(target);
                for e in &r.entries {
                    let end = e.offset as usize + e.kind.width().bytes();
                    assert!(end <= contents.len(), "validated relocation site out of range");
                    if e.kind.index_is_symbol() {
                        assert!((e.index as usize) < obj.symbols.len());
                    }
                }
            }
            for init in &obj.init_funcs {
                assert!(init.symbol.as_usize() < obj.symbols.len());
            }
        }
        Err(e) => assert!(e.location.offset <= data.len(), "error offset past the input: {e}"),
    }
}

/// Decodes `data` as `dylink.0` contents, and when it decodes, checks that our encoder
/// writes it back to something that decodes to the same model.
pub fn parse_dylink0(data: &[u8]) {
    match Dylink0::decode_contents("fuzz.so", data, 0) {
        Ok(model) => {
            let again = Dylink0::decode_contents("fuzz.so", &model.encode_contents(), 0).expect("our encoding decodes");
            assert_eq!(again, model);
        }
        Err(e) => assert!(e.location.offset <= data.len(), "error offset past the input: {e}"),
    }
    let _ = Dylink0::from_module("fuzz.so", data);
}

/// Links `data` as the only input object of a side module with `pymode-ld`'s library entry
/// point. An error is fine; a panic is a bug, and so is an output that does not validate
/// while the input does (copied bodies are left to their input: `pymode_linker::unchanged`)
/// or has no readable `dylink.0`. The seeds are real fixture objects (`fuzz/seeds/link`), so the
/// fuzzer starts from inputs that link and mutates their relocations, symbols and sections.
pub fn link(data: &[u8]) {
    thread_local! {
        // One scratch file per thread: the linker reads inputs from paths.
        static SCRATCH: (tempfile_dir::Dir, PathBuf) = tempfile_dir::Dir::new("input.o");
    }
    SCRATCH.with(|(_, path)| {
        std::fs::write(path, data).expect("write the scratch input");
        let opts = pymode_linker::Options {
            inputs: vec![pymode_linker::options::InputSpec::File(path.clone())],
            ..pymode_linker::Options::default()
        };
        if let Ok(out) = pymode_linker::link_to_bytes(&opts) {
            if let Err(e) = pymode_linker::emit::validate(&out) {
                assert!(pymode_linker::emit::validate_input(data, &out).is_err(), "the input validates, the output does not: {e}");
            }
            let dylink = Dylink0::from_module("fuzz.so", &out).expect("our dylink.0 decodes");
            assert!(dylink.is_some(), "a linked side module has dylink.0");
        }
    });
}

/// A private scratch directory removed on drop, without another dependency.
pub(crate) mod tempfile_dir {
    use std::path::PathBuf;

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(file: &str) -> (Dir, PathBuf) {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("pymode-fuzz-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create the scratch directory");
            let path = dir.join(file);
            (Dir(dir), path)
        }

        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
