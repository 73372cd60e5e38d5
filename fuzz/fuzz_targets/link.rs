#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pymode_fuzz::link(data));

// Three mutations in four aim at the object's relocations, symbols and sizes (see
// `pymode_fuzz::mutate`); the rest are libFuzzer's byte mutations, which also reach what the
// structured walker does not know about.
libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    if !seed.is_multiple_of(4) && pymode_fuzz::mutate::mutate(&mut data[..size], u64::from(seed)) {
        return size;
    }
    libfuzzer_sys::fuzzer_mutate(data, size, max_size)
});
