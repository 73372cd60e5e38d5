//! Link time of `pymode-ld` against `wasm-ld` on the same inputs, in the same run.
//!
//! - `link/markupsafe`: markupsafe's `_speedups.o` as `cargo xtask build-ext markupsafe`
//!   compiled it (-fPIC -O2): one real extension module.
//! - `link/fixtures`: the twelve `pic-O2` fixture objects in one side module (small: the
//!   size of one extension module).
//! - `link/large`: a generated corpus of PIC objects over 20 MB (functions with calls,
//!   strings, a method table with function pointers per object), compiled once with zig and
//!   cached under `target/bench-corpus/`.
//!
//! `pymode-ld` runs in-process (the library's `link`, including writing the output);
//! `wasm-ld` runs as `zig wasm-ld`, a process, as it is used. Read the ratio of the two
//! medians of one group. Needs the toolchain and fixtures (`cargo xtask fixtures`) and the
//! built markupsafe (`cargo xtask build-ext markupsafe`).

use criterion::{Criterion, criterion_group, criterion_main};
use pymode_linker::{Options, options::InputSpec};
use pymode_testdata::{Mode, fixture_names, fixture_object, wasm_ld, zig_cc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Generated objects and functions per object: 64 × 1500 gives a little over 20 MB.
const CORPUS_FILES: usize = 64;
const FUNCTIONS_PER_FILE: usize = 1500;

fn corpus_source(file: usize) -> String {
    let mut s = String::from("typedef int (*fn)(int);\nextern int host_add(int, int);\nextern int shared_counter;\n");
    for k in 0..FUNCTIONS_PER_FILE {
        s.push_str(&format!("static const char s{file}_{k}[] = \"name_{file}_{k}\";\n"));
        s.push_str(&format!(
            "int g{file}_{k}(int x) {{ int a = x * {m}; for (int i = 0; i < (x & 7); i++) a = host_add(a, i ^ {k}); \
             shared_counter += a; return a + (int)s{file}_{k}[x & 3]; }}\n",
            m = k + 1
        ));
    }
    s.push_str("struct def { const char *name; fn f; int flags; };\n");
    let entries: Vec<String> = (0..FUNCTIONS_PER_FILE).map(|k| format!("{{s{file}_{k}, g{file}_{k}, {k}}}")).collect();
    s.push_str(&format!("struct def table{file}[] = {{{}}};\n", entries.join(",")));
    s.push_str(&format!("int call{file}(int i, int x) {{ return table{file}[i % {FUNCTIONS_PER_FILE}].f(x); }}\n"));
    s
}

/// Compiles the corpus once (two compiles at a time) and returns the object paths.
fn corpus() -> Vec<PathBuf> {
    let dir = pymode_testdata::workspace_root().join("target/bench-corpus").join(format!("link-{CORPUS_FILES}x{FUNCTIONS_PER_FILE}"));
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    let objects: Vec<PathBuf> = (0..CORPUS_FILES).map(|i| dir.join(format!("gen{i}.o"))).collect();
    let missing: Vec<usize> = (0..CORPUS_FILES).filter(|&i| !objects[i].is_file()).collect();
    std::thread::scope(|scope| {
        for half in missing.chunks(missing.len().div_ceil(2).max(1)) {
            let dir = &dir;
            scope.spawn(move || {
                for &i in half {
                    let c = dir.join(format!("gen{i}.c"));
                    std::fs::write(&c, corpus_source(i)).expect("write corpus source");
                    let tmp = dir.join(format!("gen{i}.o.tmp"));
                    let out = zig_cc()
                        .args(pymode_testdata::COMMON_CFLAGS)
                        .args(["-fPIC", "-O2"])
                        .arg(&c)
                        .arg("-o")
                        .arg(&tmp)
                        .output()
                        .expect("run zig cc");
                    assert!(out.status.success(), "zig cc gen{i}.c: {}", String::from_utf8_lossy(&out.stderr));
                    std::fs::rename(&tmp, dir.join(format!("gen{i}.o"))).expect("rename object");
                }
            });
        }
    });
    objects
}

fn ours(objects: &[PathBuf], out: &Path) {
    let opts = Options {
        inputs: objects.iter().map(|o| InputSpec::File(o.clone())).collect(),
        output: Some(out.to_owned()),
        ..Options::default()
    };
    pymode_linker::link(&opts).expect("pymode-ld");
}

fn theirs(objects: &[PathBuf], out: &Path) {
    let status = wasm_ld()
        .args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"])
        .args(objects)
        .arg("-o")
        .arg(out)
        .status()
        .expect("run wasm-ld");
    assert!(status.success());
}

fn bench_group(c: &mut Criterion, name: &str, objects: &[PathBuf], samples: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let size: u64 = objects.iter().map(|o| std::fs::metadata(o).map(|m| m.len()).unwrap_or(0)).sum();
    eprintln!("link/{name}: {} objects, {:.1} MB", objects.len(), size as f64 / 1e6);
    let mut group = c.benchmark_group(format!("link/{name}"));
    group.sample_size(samples).measurement_time(Duration::from_secs(10));
    group.bench_function("pymode-ld", |b| b.iter(|| ours(objects, &dir.path().join("ours.so"))));
    group.bench_function("wasm-ld", |b| b.iter(|| theirs(objects, &dir.path().join("theirs.so"))));
    group.finish();
}

/// markupsafe's object as `cargo xtask build-ext markupsafe` left it.
fn markupsafe_object() -> PathBuf {
    let object = pymode_testdata::ext_dir("markupsafe").join("_speedups.o");
    assert!(object.is_file(), "{} is missing: run `cargo xtask build-ext markupsafe`", object.display());
    object
}

fn link(c: &mut Criterion) {
    bench_group(c, "markupsafe", &[markupsafe_object()], 50);
    let fixtures: Vec<PathBuf> = fixture_names().iter().map(|n| fixture_object(n, Mode::PicO2)).collect();
    bench_group(c, "fixtures", &fixtures, 50);
    bench_group(c, "large", &corpus(), 10);
}

criterion_group!(benches, link);
criterion_main!(benches);
