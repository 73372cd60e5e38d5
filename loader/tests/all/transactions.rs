//! Failed loads are transactions and repeated loads do not leak: heap, table and instances
//! where they started after failures, open/close cycles, the store's instance limit, corrupted
//! modules and extreme `mem_info` claims.

use crate::common::*;
use crate::libs::*;
use pymode_abi::host::DEFAULT_HANDLE;
use pymode_loader::OpenErrorKind;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        failed_load_is_a_transaction,
        thousand_failed_opens_leave_heap_and_table_where_they_started,
        open_close_cycles_keep_memory_and_table_flat,
        the_store_instance_limit_is_a_clean_open_error,
        corrupted_side_modules_never_panic_and_leave_no_trace,
        extreme_mem_info_is_refused_cleanly,
    ]
}

fn failed_load_is_a_transaction() {
    let mut env = env();
    env.write("t.so", &lib_trapping_ctor());
    env.write("a.so", &lib_a());
    let (heap0, live0) = (env.heap_top(), env.live_blocks());
    let e1 = env.open("t.so", NOW).unwrap_err();
    assert!(matches!(e1.kind, OpenErrorKind::Init { function: "__wasm_call_ctors", .. }), "{e1}");
    assert!(e1.to_string().contains("t.so") && e1.to_string().contains("unreachable"), "{e1}");
    // Memory went back to the allocator; the table slots to the free list (nulled).
    assert_eq!(env.live_blocks(), live0);
    let table1 = env.table_size();
    assert_eq!(env.loader().stats().free_table_slots, 2);
    let e2 = env.open("t.so", NOW).unwrap_err();
    assert_eq!(e2.to_string(), e1.to_string());
    assert_eq!(env.table_size(), table1);
    assert!(env.sym(DEFAULT_HANDLE, "f").is_err());
    // A later library reuses what the failed one released.
    let heap1 = env.heap_top();
    let a = env.open("a.so", NOW).unwrap();
    assert_eq!(env.table_size(), table1 + 1, "one new slot, for side_fn_unslotted or main_unslotted");
    assert!(env.heap_top() >= heap0 && heap1 >= heap0);
    assert_eq!(env.call_sym(a, "side_fn"), 100);
}

fn thousand_failed_opens_leave_heap_and_table_where_they_started() {
    let mut env = env();
    env.write("t.so", &lib_trapping_ctor());
    env.write("m.so", &lib_missing());
    // The first trapping load grows the table once; afterwards everything is reused.
    env.open("t.so", NOW).unwrap_err();
    let (heap, table, live) = (env.heap_top(), env.table_size(), env.live_blocks());
    for _ in 0..500 {
        env.open("t.so", NOW).unwrap_err();
        env.open("m.so", NOW).unwrap_err();
    }
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

fn open_close_cycles_keep_memory_and_table_flat() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let h = env.open("a.so", NOW).unwrap();
    env.sym(h, "side_fn_unslotted").unwrap();
    env.close(h).unwrap();
    let (heap, table, live) = (env.heap_top(), env.table_size(), env.live_blocks());
    for _ in 0..10_000 {
        let h = env.open("a.so", NOW).unwrap();
        assert_eq!(env.call_sym(h, "side_fn"), 100);
        env.close(h).unwrap();
    }
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

fn the_store_instance_limit_is_a_clean_open_error() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let h = env.open("a.so", NOW).unwrap();
    env.close(h).unwrap();
    env.store.data_mut().limits = wasmtime::StoreLimitsBuilder::new().instances(5).build();
    // wasmtime reads the counts when the limiter is installed.
    env.store.limiter(|h| &mut h.limits);
    // Every open makes an instance that stays in the store; one of them hits the limit.
    let mut before = (env.heap_top(), env.table_size(), env.live_blocks());
    let mut error = None;
    for _ in 0..10 {
        match env.open("a.so", NOW) {
            Ok(h) => {
                env.close(h).unwrap();
                before = (env.heap_top(), env.table_size(), env.live_blocks());
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let e = error.expect("the instance limit was reached");
    let (heap, table, live) = before;
    assert!(matches!(e.kind, OpenErrorKind::Instantiate(_)), "{e}");
    assert!(e.to_string().contains("a.so") && e.to_string().contains("instance count too high"), "{e}");
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

fn corrupted_side_modules_never_panic_and_leave_no_trace() {
    let mut env = env();
    let good = lib_a();
    let (heap, live) = (env.heap_top(), env.live_blocks());
    let mut loaded = 0;
    // Every byte of the dylink.0 section and the module header, and a sample of the rest,
    // overwritten with a few values.
    let positions: Vec<usize> = (0..good.len().min(80)).chain((80..good.len()).step_by(7)).collect();
    for (n, &pos) in positions.iter().enumerate() {
        for value in [0x00, 0x7f, 0x80, 0xff] {
            let mut bytes = good.clone();
            if bytes[pos] == value {
                continue;
            }
            bytes[pos] = value;
            let name = format!("c{n}_{value}.so");
            env.write(&name, &bytes);
            if let Ok(h) = env.open(&name, NOW) {
                loaded += 1;
                env.close(h).unwrap();
            }
        }
    }
    assert!(loaded > 0, "some corruptions (names, constants) still load");
    assert_eq!(env.loader().stats().libraries, 0);
    assert_eq!(env.live_blocks(), live);
    // Loaded-and-closed copies may have grown the heap once; failures never leave blocks.
    assert!(env.heap_top() >= heap);
}

fn extreme_mem_info_is_refused_cleanly() {
    // The budgets off, so the allocator itself is what refuses.
    let mut env = env_with(|c| {
        c.max_memory_size = u32::MAX;
        c.max_total_memory = u64::MAX;
    });
    for (size, align) in [(u32::MAX, 0), (u32::MAX - 10, 4), (16, 31), (0x8000_0000, 0)] {
        env.write("x.so", &side(&dylink(size, align, 0), &side_wat("")));
        let e = env.open("x.so", NOW).unwrap_err();
        assert!(matches!(e.kind, OpenErrorKind::Allocation { .. }), "{size} 2^{align}: {e}");
    }
    let mut env = env_with(|c| {
        c.max_table_size = u32::MAX;
        c.max_total_table = u64::MAX;
    });
    env.write("t.so", &side(&dylink(0, 0, u32::MAX), &side_wat("")));
    let e = env.open("t.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::TableGrow { .. }), "{e}");
    assert_eq!(env.loader().stats().libraries, 0);
}
