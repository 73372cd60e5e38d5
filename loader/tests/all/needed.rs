//! NEEDED libraries: loaded first through `$ORIGIN` runtime paths, chains that roll back when a
//! dependency fails, cycles.

use crate::common::*;
use crate::libs::*;
use pymode_abi::host::DEFAULT_HANDLE;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        needed_libraries_load_first_through_origin_runtime_path,
        needed_chain_of_three_and_a_failing_dependency_rolls_back,
        needed_cycles_terminate,
    ]
}

fn needed_libraries_load_first_through_origin_runtime_path() {
    let mut env = env();
    env.write("pkg/deps/libdep.so", &lib_dep());
    env.write("pkg/user.so", &lib_user(&["libdep.so"], &["$ORIGIN/deps"]));
    let u = env.open("pkg/user.so", NOW).unwrap();
    assert_eq!(env.call_sym(u, "use_dep"), 55);
    assert_eq!(env.call_sym(u, "dep_value"), 99);
    // dl_sym on the handle searches its dependencies too, but a LOCAL dep is not global.
    assert!(env.sym(u, "dep_fn").is_ok());
    assert!(env.sym(DEFAULT_HANDLE, "dep_fn").is_err());
    assert_eq!(env.loader().stats().libraries, 2);
    // Closing the user releases the dependency.
    env.close(u).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);
}

fn needed_chain_of_three_and_a_failing_dependency_rolls_back() {
    let mut env = env();
    env.write("l/libdep.so", &lib_dep());
    // mid needs libdep and re-exports a function that calls it.
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libdep.so".into()];
    d.runtime_path = vec!["$ORIGIN".into()];
    env.write(
        "l/libmid.so",
        &side(
            &d,
            &side_wat(
                r#"(import "env" "dep_fn" (func $d (result i32))) (func (export "mid_fn") (result i32) call $d i32.const 1 i32.add)"#,
            ),
        ),
    );
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libmid.so".into()];
    d.runtime_path = vec!["$ORIGIN/l".into()];
    env.write(
        "top.so",
        &side(&d, &side_wat(r#"(import "env" "mid_fn" (func $m (result i32))) (func (export "top_fn") (result i32) call $m)"#)),
    );
    let t = env.open("top.so", NOW).unwrap();
    assert_eq!(env.call_sym(t, "top_fn"), 56);
    assert_eq!(env.loader().stats().libraries, 3);
    env.close(t).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);

    // A top library whose own symbols are missing: its freshly loaded deps are unloaded too.
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libmid.so".into()];
    d.runtime_path = vec!["$ORIGIN/l".into()];
    env.write("bad.so", &side(&d, &side_wat(r#"(import "env" "absent" (func))"#)));
    let live = env.live_blocks();
    let e = env.open("bad.so", NOW).unwrap_err();
    assert!(e.to_string().contains("env.absent"), "{e}");
    assert_eq!(env.loader().stats().libraries, 0);
    assert_eq!(env.live_blocks(), live);

    // A dependency already loaded keeps its reference count right after a failure.
    let m = env.open("l/libmid.so", NOW).unwrap();
    env.open("bad.so", NOW).unwrap_err();
    assert_eq!(env.loader().stats().libraries, 2);
    env.close(m).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);

    // A missing NEEDED names both libraries.
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libnothere.so".into()];
    env.write("orphan.so", &side(&d, &side_wat("")));
    let e = env.open("orphan.so", NOW).unwrap_err();
    assert!(e.to_string().contains("orphan.so") && e.to_string().contains("libnothere.so"), "{e}");
}

fn needed_cycles_terminate() {
    let mut env = env();
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["cy_b.so".into()];
    d.runtime_path = vec!["$ORIGIN".into()];
    env.write("cy_a.so", &side(&d, &side_wat(r#"(func (export "a") (result i32) i32.const 1)"#)));
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["cy_a.so".into()];
    d.runtime_path = vec!["$ORIGIN".into()];
    env.write("cy_b.so", &side(&d, &side_wat(r#"(func (export "b") (result i32) i32.const 2)"#)));
    let a = env.open("cy_a.so", NOW).unwrap();
    assert_eq!(env.call_sym(a, "b"), 2);
    assert_eq!(env.loader().stats().libraries, 2);
}
