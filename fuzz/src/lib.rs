//! The bodies of the fuzz targets, as plain functions, so that `cargo test` can replay the
//! seed corpora through exactly the code the fuzzer runs.

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
