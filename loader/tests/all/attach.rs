//! `Loader::attach` checks the main module: a table that cannot grow, missing exports named
//! with how to link them.

use crate::common::*;
use pymode_loader::{AttachError, Loader, LoaderConfig};
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![attach_refuses_a_table_that_cannot_grow, attach_names_missing_exports_and_how_to_link,]
}

fn attach_refuses_a_table_that_cannot_grow() {
    let (mut store, instance) = instantiate(&main_wat(r#"(table (export "__indirect_function_table") 3 3 funcref)"#));
    let err = Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap_err();
    assert!(matches!(err, AttachError::TableNotGrowable { size: 3, max: 3 }), "{err}");
    assert!(err.to_string().contains("--growable-table"), "{err}");
    // A maximum above the size is fine.
    let (mut store, instance) = instantiate(&main_wat(r#"(table (export "__indirect_function_table") 3 100 funcref)"#));
    Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap();
}

fn attach_names_missing_exports_and_how_to_link() {
    let (mut store, instance) = instantiate(&main_wat(r#"(table 3 funcref)"#));
    let err = Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap_err();
    assert!(err.to_string().contains("__indirect_function_table") && err.to_string().contains("--export-table"), "{err}");

    let (mut store, instance) = instantiate(&default_main_wat());
    let config = LoaderConfig { malloc: "my_malloc".into(), ..Default::default() };
    let err = Loader::attach(&mut store, &instance, config).unwrap_err();
    assert!(err.to_string().contains("my_malloc") && err.to_string().contains("--export=malloc"), "{err}");

    let no_sp = default_main_wat().replace(r#"(global (export "__stack_pointer")"#, r#"(global"#);
    let (mut store, instance) = instantiate(&no_sp);
    let err = Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap_err();
    assert!(err.to_string().contains("__stack_pointer"), "{err}");
}
