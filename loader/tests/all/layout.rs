//! Where a side module's data goes: `.bss` zeroed on a dirty heap, alignment honoured.

use crate::common::*;
use crate::libs::*;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![bss_is_zeroed_even_after_a_dirty_heap, alignment_is_honoured,]
}

fn bss_is_zeroed_even_after_a_dirty_heap() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let p = env.call_main::<i32, i32>("malloc", 256);
    env.call_main::<(i32, i32, i32), ()>("fill", (p, 0xff, 256));
    env.call_main::<i32, ()>("free", p);
    let a = env.open("a.so", NOW).unwrap();
    let mb = env.call_sym(a, "get_memory_base");
    assert!(mb >= p && mb + 64 <= p + 256, "the test must reuse the dirty block ({mb:#x} vs {p:#x})");
    for off in (0..64).step_by(4) {
        let expect = if off == 16 { 7 } else { 0 };
        assert_eq!(env.load32((mb + off) as u32), expect, "offset {off}");
    }
}

fn alignment_is_honoured() {
    let mut env = env();
    env.write("al.so", &side(&dylink(100, 10, 0), &side_wat(r#"(func (export "mb") (result i32) global.get $mb)"#)));
    let mut handles = Vec::new();
    for i in 0..10 {
        // Ten distinct files so that each gets its own memory.
        let bytes = std::fs::read(env.dir.path().join("al.so")).unwrap();
        env.write(&format!("al{i}.so"), &bytes);
        handles.push(env.open(&format!("al{i}.so"), NOW).unwrap());
        env.call_main::<i32, i32>("malloc", 24);
    }
    for h in handles {
        let mb = env.call_sym(h, "mb");
        assert_eq!(mb % 1024, 0, "{mb:#x}");
    }
}
