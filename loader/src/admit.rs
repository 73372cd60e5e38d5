//! Step 1 of loading a library: admission. Everything that can be decided from the file
//! alone, before any other library is loaded and before the guest is touched: its size
//! against the limit, `dylink.0` (present, well-formed, sizes within the limits), the
//! compiled module (through the cache), no memory or table of its own, data and element
//! segments inside the ranges `dylink.0` asks for, and the import policy.

use std::path::Path;
use std::time::Instant;

use pymode_abi::{Dylink0, host, names};
use wasmtime::{Engine, Module};

use crate::cache::ModuleCache;
use crate::config::LoaderConfig;
use crate::error::OpenErrorKind;

/// A library that passed admission: its compiled module and its `dylink.0`.
pub(crate) struct Admitted {
    pub(crate) module: Module,
    pub(crate) dylink: Dylink0,
}

/// Times the steps of one load for the `load` span's debug events.
pub(crate) struct Step(Instant);

impl Step {
    pub(crate) fn start() -> Self {
        Step(Instant::now())
    }

    /// Logs the time since the last step and starts the next one.
    pub(crate) fn done(&mut self, step: &'static str) {
        tracing::debug!(step, elapsed_us = self.0.elapsed().as_micros() as u64);
        self.0 = Instant::now();
    }
}

/// Reads, checks and compiles the library at `canonical`; `name` is how messages (the
/// `dylink.0` reader's) name it. Logs the `read` and `compile` steps on `step`.
///
/// # Errors
/// The first limit, `dylink.0`, compilation, storage, segment or import-policy failure.
pub(crate) fn admit(
    config: &LoaderConfig,
    cache: &mut ModuleCache,
    engine: &Engine,
    canonical: &Path,
    name: &str,
    step: &mut Step,
) -> Result<Admitted, OpenErrorKind> {
    let size = std::fs::metadata(canonical)?.len();
    if size > config.max_file_size {
        return Err(OpenErrorKind::TooLarge { what: "file size", requested: size, limit: config.max_file_size });
    }
    let bytes = std::fs::read(canonical)?;
    let dylink = Dylink0::from_module(name, &bytes)?.ok_or(OpenErrorKind::NoDylink)?;
    check_limits(config, &dylink)?;
    step.done("read");
    let module = cache.get_or_compile(engine, &bytes).map_err(OpenErrorKind::Invalid)?;
    step.done("compile");
    let own = module.resources_required();
    if own.num_memories > 0 {
        return Err(OpenErrorKind::OwnStorage { what: "memory", import: names::MEMORY });
    }
    if own.num_tables > 0 {
        return Err(OpenErrorKind::OwnStorage { what: "table", import: names::INDIRECT_FUNCTION_TABLE });
    }
    let mi = dylink.mem_info;
    crate::segments::check(&bytes, mi.memory_size, mi.table_size)?;
    check_import_policy(config, &module)?;
    Ok(Admitted { module, dylink })
}

/// The memory and table sizes `dylink.0` claims, against the per-library limits.
fn check_limits(config: &LoaderConfig, dylink: &Dylink0) -> Result<(), OpenErrorKind> {
    let mi = dylink.mem_info;
    if mi.memory_size > config.max_memory_size {
        return Err(OpenErrorKind::TooLarge {
            what: "memory size",
            requested: mi.memory_size.into(),
            limit: config.max_memory_size.into(),
        });
    }
    if mi.table_size > config.max_table_size {
        return Err(OpenErrorKind::TooLarge { what: "table size", requested: mi.table_size.into(), limit: config.max_table_size.into() });
    }
    Ok(())
}

/// Only `env`, `GOT.mem`, `GOT.func` and the configured extra modules may be imported from,
/// and the loader's own FFI functions from `pymode` (they touch only guest memory and table).
fn check_import_policy(config: &LoaderConfig, module: &Module) -> Result<(), OpenErrorKind> {
    let forbidden: Vec<String> = module
        .imports()
        .filter(|i| {
            let m = i.module();
            let ffi = m == host::MODULE && host::FFI.iter().any(|h| h.name == i.name());
            !(ffi || m == names::ENV || m == names::GOT_MEM || m == names::GOT_FUNC || config.extra_import_modules.iter().any(|x| x == m))
        })
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect();
    if forbidden.is_empty() { Ok(()) } else { Err(OpenErrorKind::ForbiddenImports(forbidden)) }
}
