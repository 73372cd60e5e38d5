//! Target features: objects built with extra wasm features (`-msimd128`, `-mreference-types`)
//! link, and the output declares and is validated against what they use; objects whose
//! `target_features` disagree are refused as wasm-ld refuses them, unless
//! `--no-check-features`; `--features=` names the set; the output's section matches wasm-ld's.

use crate::common::differential::reference_link;
use crate::common::*;
use pymode_abi::object::{FeaturePolicy, Object};
use pymode_linker::FeatureCheck;
use pymode_testdata::SIMD_SOURCE;
use pymode_testdata::trials::Trial;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use wasm_encoder::{CustomSection, Encode, Section};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        simd_object_links_and_the_output_declares_simd128,
        output_declares_the_same_features_as_wasm_ld,
        a_disallowed_feature_is_refused_unless_checks_are_off,
        a_required_feature_must_be_in_every_object,
        explicit_feature_list_replaces_the_inferred_one,
        memory64_is_refused_by_name,
        command_line_flags,
    ]
}

fn simd_object(dir: &Path) -> PathBuf {
    compile(dir, "simd", SIMD_SOURCE, &["-fPIC", "-O2", "-msimd128"])
}

fn plain_object(dir: &Path) -> PathBuf {
    compile(dir, "plain", "int plain_check(void) { return 7; }\n", &[])
}

/// The `+` features a module or object declares, sorted.
fn used_features(bytes: &[u8]) -> Vec<String> {
    let module = Object::parse("out", bytes).unwrap();
    let mut used: Vec<String> =
        module.target_features.iter().flatten().filter(|f| f.policy == FeaturePolicy::Used).map(|f| f.name.to_owned()).collect();
    used.sort();
    used
}

/// A copy of `object` as `out` whose `target_features` section (LLVM writes it last) lists
/// `features` instead.
fn with_features(object: &Path, features: &[(u8, &str)], out: &Path) -> PathBuf {
    let bytes = std::fs::read(object).unwrap();
    let start = {
        let parsed = Object::parse("in", &bytes).unwrap();
        let last = parsed.sections.last().unwrap();
        assert_eq!(last.name, "target_features", "{}: target_features is not the last section", object.display());
        last.start
    };
    let mut data = Vec::new();
    (features.len() as u32).encode(&mut data);
    for (prefix, name) in features {
        data.push(*prefix);
        name.encode(&mut data);
    }
    let mut edited = bytes[..start].to_vec();
    CustomSection { name: Cow::Borrowed("target_features"), data: Cow::Owned(data) }.append_to(&mut edited);
    std::fs::write(out, &edited).unwrap();
    out.to_owned()
}

fn simd_object_links_and_the_output_declares_simd128() {
    let dir = tempfile::tempdir().unwrap();
    let object = simd_object(dir.path());
    assert!(used_features(&std::fs::read(&object).unwrap()).contains(&"simd128".to_owned()));
    // link_ok validates the output: that fails unless SIMD is allowed.
    let bytes = link_ok(&options(&[&object]));
    assert!(used_features(&bytes).contains(&"simd128".to_owned()), "{:?}", used_features(&bytes));
    assert!(pymode_linker::emit::declared_features(&bytes).unwrap().contains(wasmparser::WasmFeatures::SIMD));
    // zig's default objects say nothing of SIMD, and their output does not allow it.
    let plain = link_ok(&options(&[&plain_object(dir.path())]));
    assert!(!used_features(&plain).contains(&"simd128".to_owned()));
    assert!(!pymode_linker::emit::declared_features(&plain).unwrap().contains(wasmparser::WasmFeatures::SIMD));
}

fn output_declares_the_same_features_as_wasm_ld() {
    let dir = tempfile::tempdir().unwrap();
    let simd = simd_object(dir.path());
    let reftypes = compile(dir.path(), "reftypes", "int reftypes_check(void) { return 9; }\n", &["-fPIC", "-O2", "-mreference-types"]);
    for object in [&simd, &reftypes, &plain_object(dir.path())] {
        let theirs = reference_link(object, &dir.path().join("wasm-ld.so"));
        let ours = link_ok(&options(&[object]));
        assert_eq!(used_features(&ours), used_features(&theirs), "{}", object.display());
    }
    // Two objects: the union.
    let both = link_ok(&options(&[&simd, &reftypes]));
    let used = used_features(&both);
    assert!(used.contains(&"simd128".to_owned()) && used.contains(&"reference-types".to_owned()), "{used:?}");
}

fn a_disallowed_feature_is_refused_unless_checks_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let simd = simd_object(dir.path());
    let plain = plain_object(dir.path());
    let no_simd = with_features(&plain, &[(b'+', "mutable-globals"), (b'-', "simd128")], &dir.path().join("no-simd.o"));
    let err = link_err(&options(&[&no_simd, &simd]));
    assert_eq!(
        err,
        format!(
            "target feature 'simd128' used by {} is disallowed by {}; use --no-check-features to link anyway",
            simd.display(),
            no_simd.display()
        )
    );
    let mut opts = options(&[&no_simd, &simd]);
    opts.check_features = FeatureCheck::Off;
    let bytes = link_ok(&opts);
    assert!(used_features(&bytes).contains(&"simd128".to_owned()));
    // Alone, the object that disallows SIMD links.
    link_ok(&options(&[&no_simd]));
}

fn a_required_feature_must_be_in_every_object() {
    let dir = tempfile::tempdir().unwrap();
    let plain = plain_object(dir.path());
    let wants = with_features(&plain, &[(b'=', "simd128")], &dir.path().join("wants-simd.o"));
    let other = compile(dir.path(), "other", "int other_check(void) { return 1; }\n", &[]);
    let err = link_err(&options(&[&wants, &other]));
    assert_eq!(err, format!("missing target feature 'simd128' in {}, required by {}", other.display(), wants.display()));
    link_ok(&options(&[&wants, &simd_object(dir.path())]));
}

fn explicit_feature_list_replaces_the_inferred_one() {
    let dir = tempfile::tempdir().unwrap();
    let simd = simd_object(dir.path());
    let all = used_features(&std::fs::read(&simd).unwrap());
    // As in wasm-ld, every feature an object uses must be listed.
    let mut opts = options(&[&simd]);
    opts.features = Some(all.iter().filter(|f| *f != "simd128").cloned().collect());
    let err = link_err(&opts);
    assert_eq!(err, format!("target feature 'simd128' used by {} is not in --features", simd.display()));
    opts.features = Some(all.iter().rev().cloned().collect());
    assert_eq!(used_features(&link_ok(&opts)), all);
    // Unchecked, the list is the output's, whatever the objects use.
    opts.features = Some(vec!["simd128".into(), "mutable-globals".into()]);
    opts.check_features = FeatureCheck::Off;
    assert_eq!(used_features(&link_ok(&opts)), ["mutable-globals", "simd128"]);
}

fn memory64_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let wide = with_features(&plain_object(dir.path()), &[(b'+', "memory64")], &dir.path().join("wide.o"));
    let err = link_err(&options(&[&wide]));
    assert_eq!(err, format!("{}: memory64 (side modules share a 32-bit memory) is not supported yet", wide.display()));
}

fn command_line_flags() {
    let dir = tempfile::tempdir().unwrap();
    let simd = simd_object(dir.path());
    let no_simd = with_features(&plain_object(dir.path()), &[(b'-', "simd128")], &dir.path().join("no-simd.o"));
    let out = dir.path().join("out.so");
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        extra.iter().map(Into::into).chain([no_simd.clone().into(), simd.clone().into(), "-o".into(), out.clone().into()]).collect()
    };
    let refused = run_ld(args(&[]));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).starts_with("pymode-ld: error: target feature 'simd128' used by"));
    for flags in [&["--no-check-features"][..], &["-no-check-features"], &["--check-features", "--no-check-features"]] {
        let run = run_ld(args(flags));
        assert!(run.status.success(), "{flags:?}: {}", String::from_utf8_lossy(&run.stderr));
        assert!(run.stderr.is_empty(), "{flags:?}: {}", String::from_utf8_lossy(&run.stderr));
    }
    let run = run_ld(args(&["--no-check-features", "--features=simd128,,sign-ext"]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(used_features(&std::fs::read(&out).unwrap()), ["sign-ext", "simd128"]);
    let run = run_ld(args(&["--no-check-features", "--features", "simd128"]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(used_features(&std::fs::read(&out).unwrap()), ["simd128"]);
}
