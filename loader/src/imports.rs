//! Step 2: plan every import before anything is allocated, so that a library with
//! unresolved symbols leaves no trace at all. Each import gets a [`Plan`]; all missing
//! symbols are reported together, then all type mismatches.
//!
//! Where a symbol comes from: `env.memory`, `env.__indirect_function_table` and
//! `env.__stack_pointer` are the main module's; `__memory_base` / `__table_base` are made
//! when the library is placed; a symbol the library itself exports binds to its own
//! definition (DESIGN §5.8); `__cxa_atexit` / `atexit` are the loader's own (see `dtors`);
//! anything else is looked up in the main module, then the RTLD_GLOBAL libraries, then the
//! library's own dependencies.

use std::collections::HashSet;

use pymode_abi::{SymbolFlags, host, names};
use wasmtime::{Extern, ExternType, FuncType, ImportType, Module, Mutability, StoreContextMut, ValType};

use crate::admit::Admitted;
use crate::error::{MissingSymbol, OpenErrorKind, SymbolTypeMismatch, TypeMismatchKind};
use crate::registry::Registry;
use crate::state::MainModule;
use crate::symbol::{Handle, Provider, Symbol, SymbolAddress};

/// How one import of the module being loaded is satisfied.
pub(crate) enum Plan {
    Ready(Extern),
    MemoryBase,
    TableBase,
    /// A GOT entry the module itself defines: filled from its exports after instantiation.
    GotSelf {
        func: bool,
        name: String,
    },
    /// A GOT entry defined elsewhere (or weak and undefined: `None` → 0). Allocation turns
    /// it into [`Plan::Got`] once a function has its canonical slot.
    GotExternal {
        found: Option<(Symbol, Provider)>,
    },
    /// A GOT entry whose address is known.
    Got(SymbolAddress),
    /// A weak undefined function: a stub that traps naming it.
    WeakStub {
        ty: FuncType,
        name: String,
    },
    /// `env.__cxa_atexit` or `env.atexit`: the loader's own, keeping the handlers with the
    /// library so that `dl_close` runs them.
    AtExit {
        name: String,
    },
    /// An undefined function of a library opened with `RTLD_LAZY`: a stub bound later.
    Lazy {
        ty: FuncType,
        name: String,
    },
    /// `pymode.ffi_*`: the loader's FFI host function of that name.
    Ffi {
        name: &'static str,
    },
    /// A function the module imports and also exports (wasm-ld does this for interposable
    /// definitions, e.g. weak ones): a stub that forwards to the module's own export once it
    /// exists, since a module cannot import from itself.
    SelfForward {
        ty: FuncType,
        name: String,
    },
}

/// The plan for every import, in import order, and the libraries outside the dependency
/// closure it binds to (RTLD_GLOBAL ones), on which the library will hold a reference.
pub(crate) struct ImportPlan {
    pub(crate) plans: Vec<Plan>,
    pub(crate) providers: Vec<Handle>,
}

/// What planning looks at, and what it has found so far.
struct Planner<'a, 'b, T: 'static> {
    store: &'a mut StoreContextMut<'b, T>,
    main: &'a MainModule,
    registry: &'a Registry,
    module: &'a Module,
    /// The library's dependency closure.
    scope: Vec<Handle>,
    /// Symbol names marked weak in IMPORT_INFO.
    weak: HashSet<&'a str>,
    /// The module's own export names.
    own: HashSet<&'a str>,
    lazy: bool,
    providers: Vec<Handle>,
    missing: Vec<MissingSymbol>,
    mismatched: Vec<SymbolTypeMismatch>,
}

/// Decides how every import of `admitted` is satisfied. `deps` are the library's NEEDED
/// libraries (loaded); `lazy` is `RTLD_LAZY` without `RTLD_NOW`.
///
/// # Errors
/// [`OpenErrorKind::MissingSymbols`] listing every unresolved symbol, else
/// [`OpenErrorKind::TypeMismatch`] listing every symbol of the wrong kind or signature.
pub(crate) fn plan_imports<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    main: &MainModule,
    registry: &Registry,
    admitted: &Admitted,
    deps: &[Handle],
    lazy: bool,
) -> Result<ImportPlan, OpenErrorKind> {
    let module = &admitted.module;
    // Weakness belongs to the symbol: wasm-ld marks `env.f` weak in IMPORT_INFO but not
    // the `GOT.func.f` entry for the same symbol.
    let weak =
        admitted.dylink.import_info.iter().filter(|i| i.flags.contains(SymbolFlags::BINDING_WEAK)).map(|i| i.field.as_str()).collect();
    let own = module.exports().map(|e| e.name()).collect();
    let scope = registry.dep_closure(deps);
    let mut planner = Planner {
        store,
        main,
        registry,
        module,
        scope,
        weak,
        own,
        lazy,
        providers: Vec::new(),
        missing: Vec::new(),
        mismatched: Vec::new(),
    };
    let plans: Vec<Plan> = module.imports().filter_map(|imp| planner.plan(&imp)).collect();
    if !planner.missing.is_empty() {
        return Err(OpenErrorKind::MissingSymbols(planner.missing));
    }
    if !planner.mismatched.is_empty() {
        return Err(OpenErrorKind::TypeMismatch(planner.mismatched));
    }
    Ok(ImportPlan { plans, providers: planner.providers })
}

impl<T: 'static> Planner<'_, '_, T> {
    /// The plan for one import; `None` when it is missing or mismatched (recorded).
    fn plan(&mut self, imp: &ImportType<'_>) -> Option<Plan> {
        let m = imp.module();
        if m == names::ENV {
            self.env(imp)
        } else if m == names::GOT_MEM || m == names::GOT_FUNC {
            self.got(imp, m == names::GOT_FUNC)
        } else if let (true, Some(ffi)) = (m == host::MODULE, host::FFI.iter().find(|h| h.name == imp.name())) {
            match imp.ty() {
                ExternType::Func(fty) if crate::ffi::import_matches(ffi, &fty) => Some(Plan::Ffi { name: ffi.name }),
                ExternType::Func(fty) => {
                    let defined = FuncType::new(
                        self.store.engine(),
                        ffi.params.iter().map(|_| ValType::I32),
                        ffi.results.iter().map(|_| ValType::I32),
                    );
                    self.mismatched(imp, TypeMismatchKind::Signature { imported: fty, defined })
                }
                _ => self.mismatched(imp, TypeMismatchKind::DataAsFunction),
            }
        } else {
            // An allowed extra module: its functions come from the main module.
            match (self.main.symbols.get(imp.name()), imp.ty()) {
                (Some(Symbol::Func(f)), ExternType::Func(fty)) if f.ty(&*self.store).matches(&fty) => Some(Plan::Ready((*f).into())),
                _ => self.missing(imp),
            }
        }
    }

    fn missing(&mut self, imp: &ImportType<'_>) -> Option<Plan> {
        self.missing.push(MissingSymbol { module: imp.module().to_owned(), name: imp.name().to_owned(), ty: imp.ty() });
        None
    }

    fn mismatched(&mut self, imp: &ImportType<'_>, kind: TypeMismatchKind) -> Option<Plan> {
        self.mismatched.push(SymbolTypeMismatch { module: imp.module().to_owned(), name: imp.name().to_owned(), kind });
        None
    }

    /// A library outside the dependency closure that this one binds to: it will hold a
    /// reference on it, so that it cannot be unloaded under it.
    fn bind_to(&mut self, provider: Provider) {
        if let Provider::Lib(h) = provider
            && !self.scope.contains(&h)
            && !self.providers.contains(&h)
        {
            self.providers.push(h);
        }
    }

    /// An `env` import.
    fn env(&mut self, imp: &ImportType<'_>) -> Option<Plan> {
        let name = imp.name();
        match (name, imp.ty()) {
            (names::MEMORY, ExternType::Memory(_)) => Some(Plan::Ready(self.main.memory.into())),
            (names::INDIRECT_FUNCTION_TABLE, ExternType::Table(_)) => Some(Plan::Ready(self.main.table.into())),
            (names::STACK_POINTER, ExternType::Global(_)) => Some(Plan::Ready(self.main.stack_pointer.into())),
            (names::MEMORY_BASE, ExternType::Global(_)) => Some(Plan::MemoryBase),
            (names::TABLE_BASE, ExternType::Global(_)) => Some(Plan::TableBase),
            // The module's own definition wins (DESIGN §5.8), as for GOT entries.
            (_, ExternType::Func(fty)) if matches!(self.module.get_export(name), Some(ExternType::Func(_))) => {
                Some(Plan::SelfForward { ty: fty, name: name.to_owned() })
            }
            (_, ExternType::Func(fty)) if crate::dtors::interposed(name, &fty) => Some(Plan::AtExit { name: name.to_owned() }),
            (_, ExternType::Func(fty)) => self.env_func(imp, fty),
            // Other env globals (e.g. `__tls_base`) can only come from the main module.
            (_, ExternType::Global(_)) => match self.main.instance.get_global(&mut *self.store, name) {
                Some(g) => Some(Plan::Ready(g.into())),
                None => self.missing(imp),
            },
            _ => self.missing(imp),
        }
    }

    /// An `env` function defined elsewhere.
    fn env_func(&mut self, imp: &ImportType<'_>, fty: FuncType) -> Option<Plan> {
        let name = imp.name();
        match self.registry.lookup(&self.main.symbols, name, &self.scope) {
            Some((Symbol::Func(f), provider)) => {
                let defined = f.ty(&*self.store);
                if defined.matches(&fty) {
                    self.bind_to(provider);
                    Some(Plan::Ready(f.into()))
                } else {
                    self.mismatched(imp, TypeMismatchKind::Signature { imported: fty, defined })
                }
            }
            Some((Symbol::Data(_), _)) => self.mismatched(imp, TypeMismatchKind::DataAsFunction),
            None if self.weak.contains(name) => Some(Plan::WeakStub { ty: fty, name: name.to_owned() }),
            None if self.lazy => Some(Plan::Lazy { ty: fty, name: name.to_owned() }),
            None => self.missing(imp),
        }
    }

    /// A `GOT.mem` or `GOT.func` entry.
    fn got(&mut self, imp: &ImportType<'_>, func: bool) -> Option<Plan> {
        let name = imp.name();
        match imp.ty() {
            ExternType::Global(g) if g.mutability() == Mutability::Var && matches!(g.content(), ValType::I32) => {}
            _ => return self.mismatched(imp, TypeMismatchKind::GotNotMutableI32),
        }
        // The module's own definition wins (DESIGN §5.8: no interposition).
        if self.own.contains(name) {
            return Some(Plan::GotSelf { func, name: name.to_owned() });
        }
        match self.registry.lookup(&self.main.symbols, name, &self.scope) {
            Some((Symbol::Func(_), _)) if !func => self.mismatched(imp, TypeMismatchKind::FunctionAsData),
            Some((Symbol::Data(_), _)) if func => self.mismatched(imp, TypeMismatchKind::DataAsFunctionAddress),
            Some(found) => {
                self.bind_to(found.1);
                Some(Plan::GotExternal { found: Some(found) })
            }
            None if self.weak.contains(name) => Some(Plan::GotExternal { found: None }),
            None => self.missing(imp),
        }
    }
}
