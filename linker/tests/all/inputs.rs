//! Inputs other than a single object: archives (members pulled only to define undefined
//! symbols, with or without a symbol index), `-L`/`-l`, side modules as inputs (NEEDED),
//! response files, and several objects.

use crate::common::*;
use pymode_abi::object::Object;
use pymode_linker::options::InputSpec;
use pymode_testdata::trials::Trial;
use pymode_testdata::{Mode, fixture_archive, fixture_object};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        archive_members_are_pulled_only_when_needed,
        weak_references_do_not_pull_members,
        archive_without_symbol_index_is_searched_by_reading_members,
        dash_l_searches_dash_capital_l_directories,
        side_module_input_becomes_needed_and_defines_its_exports,
        response_file_and_rpath,
        all_fixtures_link_into_one_module,
        export_forces_hidden_symbols_out_and_strip_all_drops_names,
        export_if_defined_exports_hidden_definitions_and_ignores_missing_ones,
    ]
}

const CALLS_METHOD_TABLE: &str = "int method_table_check(void);\nint main_check(void) { return method_table_check(); }\n";

fn archive_members_are_pulled_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let main = compile(dir.path(), "main", CALLS_METHOD_TABLE, &[]);
    let bytes = link_ok(&options(&[&main, &fixture_archive()]));
    let exports = export_names(&bytes);
    assert!(exports.contains(&"method_table_check".to_owned()), "{exports:?}");
    assert!(!exports.contains(&"data_pointer_check".to_owned()), "unneeded member pulled: {exports:?}");
    assert!(!exports.contains(&"extern_calls_check".to_owned()), "unneeded member pulled: {exports:?}");
    assert!(!import_names(&bytes).iter().any(|(_, f)| f == "method_table_check"));
}

fn weak_references_do_not_pull_members() {
    let dir = tempfile::tempdir().unwrap();
    let source = "extern int method_table_check(void) __attribute__((weak));\n\
                  int main_check(void) { return method_table_check ? method_table_check() : 0; }\n";
    let main = compile(dir.path(), "main", source, &[]);
    let bytes = link_ok(&options(&[&main, &fixture_archive()]));
    assert!(!export_names(&bytes).contains(&"method_table_check".to_owned()));
    assert!(import_names(&bytes).contains(&("env".to_owned(), "method_table_check".to_owned())));
}

fn archive_without_symbol_index_is_searched_by_reading_members() {
    let dir = tempfile::tempdir().unwrap();
    let main = compile(dir.path(), "main", CALLS_METHOD_TABLE, &[]);
    let member = |name: &str| std::fs::read(fixture_object(name, Mode::PicO2)).unwrap();
    let (mt, ec) = (member("method_table"), member("extern_calls"));
    let archive = dir.path().join("libplain.a");
    write_plain_archive(&archive, &[("extern_calls.o", &ec), ("method_table.o", &mt)]);
    let bytes = link_ok(&options(&[&main, &archive]));
    let exports = export_names(&bytes);
    assert!(exports.contains(&"method_table_check".to_owned()));
    assert!(!exports.contains(&"extern_calls_check".to_owned()));
}

fn dash_l_searches_dash_capital_l_directories() {
    let dir = tempfile::tempdir().unwrap();
    let main = compile(dir.path(), "main", CALLS_METHOD_TABLE, &[]);
    let libdir = fixture_archive().parent().unwrap().to_owned();
    let out = dir.path().join("main.so");
    let run = run_ld([
        "-shared".as_ref(),
        main.as_os_str(),
        "-L".as_ref(),
        libdir.as_os_str(),
        "-lfixtures".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(export_names(&std::fs::read(&out).unwrap()).contains(&"method_table_check".to_owned()));
}

fn side_module_input_becomes_needed_and_defines_its_exports() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libmt.so");
    std::fs::write(&lib, link_ok(&options(&[&fixture_object("method_table", Mode::PicO2)]))).unwrap();
    let main = compile(dir.path(), "main", CALLS_METHOD_TABLE, &[]);
    // The side module comes first, so the archive's member is not pulled: it is defined.
    let mut opts = options(&[&main, &lib]);
    opts.inputs.push(InputSpec::File(fixture_archive()));
    let bytes = link_ok(&opts);
    let module = Object::parse("main.so", &bytes).unwrap();
    assert_eq!(module.dylink0.unwrap().needed, vec!["libmt.so".to_owned()]);
    assert!(import_names(&bytes).contains(&("env".to_owned(), "method_table_check".to_owned())));
    assert!(!export_names(&bytes).contains(&"method_table_check".to_owned()));
}

fn response_file_and_rpath() {
    let dir = tempfile::tempdir().unwrap();
    let object = fixture_object("extern_calls", Mode::PicO2);
    let out = dir.path().join("x.so");
    let rsp = dir.path().join("args.rsp");
    std::fs::write(&rsp, format!("--shared \"{}\"\n-o {}\n-rpath $ORIGIN/lib\n", object.display(), out.display())).unwrap();
    let run = run_ld([format!("@{}", rsp.display())]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let module = Object::parse("x.so", &bytes).unwrap();
    assert_eq!(module.dylink0.unwrap().runtime_path, vec!["$ORIGIN/lib".to_owned()]);
}

fn all_fixtures_link_into_one_module() {
    for mode in [Mode::PicO0, Mode::PicO2] {
        let objects: Vec<_> = pymode_testdata::fixture_names().iter().map(|n| fixture_object(n, mode)).collect();
        let refs: Vec<&std::path::Path> = objects.iter().map(|p| p.as_path()).collect();
        let bytes = link_ok(&options(&refs));
        pymode_linker::emit::validate(&bytes).unwrap();
        let exports = export_names(&bytes);
        for name in pymode_testdata::fixture_names() {
            let check = format!("{name}_check");
            assert!(exports.contains(&check), "{mode}: {check} not exported");
        }
    }
}

fn export_forces_hidden_symbols_out_and_strip_all_drops_names() {
    let dir = tempfile::tempdir().unwrap();
    let source = "__attribute__((visibility(\"hidden\"))) int hidden_fn(void) { return 1; }\n\
                  __attribute__((visibility(\"hidden\"))) int hidden_data = 5;\n\
                  int visible(void) { return hidden_fn() + hidden_data; }\n";
    let object = compile(dir.path(), "h", source, &[]);
    let plain = link_ok(&options(&[&object]));
    assert!(!export_names(&plain).iter().any(|n| n.starts_with("hidden")));
    assert!(Object::parse("plain", &plain).unwrap().sections.iter().any(|s| s.name == "name"));

    let mut opts = options(&[&object]);
    opts.exports = vec!["hidden_fn".into(), "hidden_data".into()];
    opts.strip_all = true;
    let bytes = link_ok(&opts);
    let exports = export_names(&bytes);
    assert!(exports.contains(&"hidden_fn".to_owned()) && exports.contains(&"hidden_data".to_owned()), "{exports:?}");
    assert!(!Object::parse("stripped", &bytes).unwrap().sections.iter().any(|s| s.name == "name"));
}

fn export_if_defined_exports_hidden_definitions_and_ignores_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let object = compile(dir.path(), "h", "__attribute__((visibility(\"hidden\"))) int hidden_fn(void) { return 1; }\n", &[]);
    let out = dir.path().join("h.so");
    let run = run_ld([
        object.as_os_str(),
        "--export-if-defined=hidden_fn".as_ref(),
        "--export-if-defined=not_defined_anywhere".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let exports = export_names(&std::fs::read(&out).unwrap());
    assert!(exports.contains(&"hidden_fn".to_owned()));
    assert!(!exports.contains(&"not_defined_anywhere".to_owned()));
}
