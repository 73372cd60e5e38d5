//! `RTLD_LAZY`: a library may be opened while some of the functions it calls directly are
//! still undefined. Each such import becomes a stub that forwards to a binding; the loader
//! binds it when a library that defines the name becomes visible (a later `RTLD_GLOBAL`
//! load), and the importer then holds a reference on that library, as glibc does, so it
//! is never unloaded under a bound stub. Calling a stub that is not bound traps with a
//! message naming the symbol, as glibc's "symbol lookup error" does.
//!
//! Only direct calls (`env` function imports) can be lazy: a `GOT.func` or `GOT.mem` entry
//! is an address the module may store anywhere, so it must be known at load time, as ELF
//! requires for address-taken functions and data.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use wasmtime::{AsContext, AsContextMut, Func, FuncType};

use crate::symbol::{Handle, Provider, Symbol};

/// One lazily bound function import of one library.
#[derive(Debug)]
pub(crate) struct LazyBinding {
    /// The symbol name (`env.NAME`).
    pub(crate) name: String,
    /// The type the importing module declared; a definition must match it.
    pub(crate) ty: FuncType,
    /// The definition, once bound; never unbound, since the provider cannot go first.
    target: OnceLock<Func>,
}

impl LazyBinding {
    pub(crate) fn new(name: String, ty: FuncType) -> Self {
        LazyBinding { name, ty, target: OnceLock::new() }
    }

    /// The bound definition, if any.
    pub(crate) fn bound(&self) -> Option<Func> {
        self.target.get().copied()
    }

    /// The stub the module imports in place of the missing function.
    pub(crate) fn stub<T: 'static>(self: &Arc<Self>, store: impl AsContextMut<Data = T>, library: &str) -> Func {
        let binding = Arc::clone(self);
        let unbound =
            format!("lazy symbol `{}` (imported by {library} with RTLD_LAZY) is not defined by any library loaded so far", self.name);
        Func::new(store, self.ty.clone(), move |mut caller, params, results| match binding.bound() {
            Some(f) => f.call(&mut caller, params, results),
            None => Err(wasmtime::Error::msg(unbound.clone())),
        })
    }
}

/// One library's lazy imports and the scope they may bind in.
pub(crate) struct Pending<'a> {
    /// The importing library.
    pub(crate) importer: Handle,
    /// Its path, for the log.
    pub(crate) library: &'a Path,
    pub(crate) bindings: &'a [Arc<LazyBinding>],
    /// Its dependency closure: a provider in it is already referenced.
    pub(crate) scope: Vec<Handle>,
}

/// Binds every unbound binding in `pending` that `lookup` (the global scope, then the
/// importer's scope) now finds with a matching type. Returns the new `(importer, provider)`
/// references to take, so that a provider stays loaded while it can be called; the caller
/// (the registry) takes them. Runs after each successful `dl_open` and `dl_close`; with no
/// lazy imports anywhere, `pending` is empty.
pub(crate) fn bind_pending<'a>(
    store: impl AsContext,
    pending: impl IntoIterator<Item = Pending<'a>>,
    lookup: impl Fn(&str, &[Handle]) -> Option<(Symbol, Provider)>,
) -> Vec<(Handle, Handle)> {
    let store = store.as_context();
    let mut new_refs: Vec<(Handle, Handle)> = Vec::new();
    for Pending { importer, library, bindings, scope } in pending {
        for binding in bindings {
            if binding.target.get().is_some() {
                continue;
            }
            if let Some((Symbol::Func(f), provider)) = lookup(&binding.name, &scope)
                && f.ty(&store).matches(&binding.ty)
            {
                tracing::debug!(symbol = binding.name, library = %library.display(), "lazy binding resolved");
                // Checked unset above, and the loader is the only writer.
                let _ = binding.target.set(f);
                if let Provider::Lib(h) = provider
                    && h != importer
                    && !scope.contains(&h)
                    && !new_refs.contains(&(importer, h))
                {
                    new_refs.push((importer, h));
                }
            }
        }
    }
    new_refs
}
