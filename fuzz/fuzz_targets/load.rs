#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pymode_fuzz::load(data));
