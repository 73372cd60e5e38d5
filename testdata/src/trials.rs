//! The harness of the `tests/all` binaries that run one trial per test and per case
//! (libtest-mimic, `harness = false` in the crate's `[[test]]` entry), so that a crate's
//! integration tests link wasmtime once and every fixture or catalogue case is a trial of its
//! own, runnable by name (`cargo test -p pymode-linker --test all -- golden::pymode-ld::pic-O2/aligned`).
//!
//! Plain tests are functions `fn name() { ... }` at the top level of a module of the binary
//! (no parameters, no result), listed in that module's `trials()` with [`tests!`]; case loops
//! add their cases there with [`case`], computed from the directory or generator list at run
//! time, so a new fixture or catalogue case is picked up without editing any list. Without
//! libtest's `#[test]`, nothing would notice a test that is not listed: [`run`] adds the trial
//! `harness::every_test_is_registered`, which reads the binary's sources and fails when a
//! `fn name()` is not a registered trial, when a `#[test]` attribute appears (it would be
//! compiled out silently), or when a `.rs` file under `tests/all` is not one of its modules.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};

pub use libtest_mimic::{Arguments, Failed, Trial};

/// A module of a `tests/all` binary with trials, for [`run`]: made by [`modules!`].
pub struct Module {
    /// Its path under `tests/all`, without `.rs`, as `mod` sees it (`golden`, `common/differential`).
    pub name: &'static str,
    /// Its plain tests and cases.
    pub trials: fn() -> Vec<Trial>,
}

/// The trials of the modules named, for [`run`]: each module defines `pub(crate) fn trials()`.
#[macro_export]
macro_rules! modules {
    ($($module:ident),* $(,)?) => {
        &[$($crate::trials::Module { name: stringify!($module), trials: $module::trials }),*]
    };
}

/// The plain tests of the calling module as trials named `topic::function`; attributes such as
/// `#[cfg(unix)]` may precede a name.
#[macro_export]
macro_rules! tests {
    ($($(#[$attr:meta])* $test:ident),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut trials = ::std::vec::Vec::new();
        $( $(#[$attr])* trials.push($crate::trials::test(module_path!(), stringify!($test), $test)); )*
        trials
    }};
}

/// The topic of a module of the binary: its `module_path!()` without the crate (`all`).
fn topic(module_path: &str) -> &str {
    module_path.split_once("::").map_or(module_path, |(_, rest)| rest)
}

/// A plain test as a trial named `topic::name`; see [`tests!`].
pub fn test(module_path: &str, name: &str, test: fn()) -> Trial {
    Trial::test(format!("{}::{name}", topic(module_path)), move || {
        test();
        Ok(())
    })
}

/// One case of a case loop as a trial named `topic::case`; a panic in `run` fails it.
pub fn case(module_path: &str, case: impl Display, run: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(format!("{}::{case}", topic(module_path)), move || {
        run();
        Ok(())
    })
}

/// The `main` of a `tests/all` binary: the trials of `modules` plus the registration check,
/// run with libtest's command line (filters, `--exact`, `--list`, `--test-threads`, and
/// `RUST_TEST_THREADS` when no `--test-threads` is given). `manifest_dir` is the crate's
/// `CARGO_MANIFEST_DIR`; `helpers` are the modules without tests (`common`), whose files the
/// check also accounts for.
pub fn run(manifest_dir: &str, modules: &[Module], helpers: &[&'static str]) -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS").ok().and_then(|n| n.parse().ok());
    }
    let mut trials = Vec::new();
    let mut listed = Vec::new();
    for module in modules {
        let module_trials = (module.trials)();
        listed.push((module.name, module_trials.iter().map(|t| t.name().to_owned()).collect::<Vec<_>>()));
        trials.extend(module_trials);
    }
    let dir = Path::new(manifest_dir).join("tests").join("all");
    let helpers = helpers.to_vec();
    trials.push(Trial::test("harness::every_test_is_registered", move || {
        let problems = registration_problems(&dir, &listed, &helpers);
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n").into()) }
    }));
    libtest_mimic::run(&args, trials).exit_code()
}

/// What is wrong with the registration of the tests under `dir` (`tests/all`): `listed` holds
/// each module with trials and the names of its trials.
fn registration_problems(dir: &Path, listed: &[(&str, Vec<String>)], helpers: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut all_names = BTreeSet::new();
    for name in listed.iter().flat_map(|(_, names)| names) {
        if !all_names.insert(name.as_str()) {
            problems.push(format!("two trials are named {name}"));
        }
    }
    let modules: BTreeSet<&str> = listed.iter().map(|(m, _)| *m).chain(helpers.iter().copied()).collect();
    for file in rust_files(dir) {
        let rel = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        if rel == "main.rs" {
            continue;
        }
        let module = rel.strip_suffix("/mod.rs").or_else(|| rel.strip_suffix(".rs")).unwrap_or(&rel).to_owned();
        if !modules.contains(module.as_str()) {
            problems.push(format!(
                "tests/all/{rel} is not a module of the binary: declare it in main.rs and list it in modules! (or as a helper)"
            ));
            continue;
        }
        let source = match std::fs::read_to_string(&file) {
            Ok(source) => source,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let registered: BTreeSet<&str> =
            listed.iter().filter(|(m, _)| *m == module).flat_map(|(_, names)| names).map(String::as_str).collect();
        let topic = module.replace('/', "::");
        for (line_no, line) in source.lines().enumerate() {
            let at = format!("tests/all/{rel}:{}", line_no + 1);
            if line.trim_start().starts_with("#[test]") {
                problems
                    .push(format!("{at}: #[test] is compiled out in this harness-less binary: list the function in trials() with tests!"));
            }
            if let Some(test) = plain_test_name(line) {
                let name = format!("{topic}::{test}");
                if !registered.contains(name.as_str()) {
                    problems.push(format!("{at}: fn {test}() is not a trial: list it in {topic}'s trials() with tests!"));
                }
            }
        }
    }
    problems
}

/// The name of the function a line declares if it looks like a plain test: `fn name() {` at
/// the top level (no indentation), optionally `pub` or `pub(crate)`.
fn plain_test_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pub(crate) ").or_else(|| line.strip_prefix("pub ")).unwrap_or(line);
    let rest = rest.strip_prefix("fn ")?;
    let (name, after) = rest.split_once('(')?;
    let plain = after.strip_prefix(')')?.trim_start().starts_with('{');
    (plain && !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("{}: {e}", d.display())).path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn plain_tests_are_recognised_by_their_shape() {
        assert_eq!(plain_test_name("fn loads() {"), Some("loads"));
        assert_eq!(plain_test_name("pub fn loads() {"), Some("loads"));
        assert_eq!(plain_test_name("pub(crate) fn loads()  {"), Some("loads"));
        assert_eq!(plain_test_name("fn helper(x: u32) {"), None);
        assert_eq!(plain_test_name("fn helper() -> Vec<u8> {"), None);
        assert_eq!(plain_test_name("    fn nested() {"), None);
        assert_eq!(plain_test_name("pub(crate) fn trials() -> Vec<Trial> {"), None);
    }

    #[test]
    fn unregistered_tests_stray_attributes_and_files_are_reported() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("main.rs"), "mod a;\n").unwrap();
        std::fs::write(dir.join("a.rs"), "fn listed() {\n}\nfn forgotten() {\n}\n#[test]\nfn helper(x: u8) {}\n").unwrap();
        std::fs::write(dir.join("stray.rs"), "").unwrap();
        std::fs::create_dir_all(dir.join("common")).unwrap();
        std::fs::write(dir.join("common").join("mod.rs"), "pub fn util() -> u8 { 1 }\n").unwrap();
        let listed = [("a", vec!["a::listed".to_owned()])];
        let problems = registration_problems(&dir, &listed, &["common"]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("a.rs:3: fn forgotten()"), "{problems:#?}");
        assert!(problems[1].contains("a.rs:5: #[test]"), "{problems:#?}");
        assert!(problems[2].contains("tests/all/stray.rs is not a module"), "{problems:#?}");
        assert!(
            registration_problems(&dir, &[("a", vec!["a::listed".into(), "a::listed".into()])], &["common", "stray"])
                .iter()
                .any(|p| p == "two trials are named a::listed")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pymode-trials-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
