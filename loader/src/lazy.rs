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

use std::sync::{Arc, OnceLock};

use wasmtime::{AsContextMut, Func, FuncType, StoreContextMut};

use crate::state::{Handle, Loader, Provider, Symbol};

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
        let unbound = format!(
            "lazy symbol `{}` (imported by {library} with RTLD_LAZY) is not defined by any library loaded so far",
            self.name
        );
        Func::new(store, self.ty.clone(), move |mut caller, params, results| match binding.bound() {
            Some(f) => f.call(&mut caller, params, results),
            None => Err(wasmtime::Error::msg(unbound.clone())),
        })
    }
}

impl Loader {
    /// Binds every unbound lazy import that a visible library now defines with a matching
    /// type; the importer takes a reference on the provider, as for an eager binding, so
    /// that the provider stays loaded while it can be called. Runs after each successful
    /// `dl_open` and `dl_close`; with no lazy imports anywhere it is one pass over the
    /// libraries.
    pub(crate) fn bind_lazy<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>) {
        let mut new_refs: Vec<(Handle, Handle)> = Vec::new();
        for (&importer, lib) in &self.libs {
            if lib.lazy.is_empty() {
                continue;
            }
            let scope = self.dep_closure(&lib.deps);
            for binding in &lib.lazy {
                if binding.target.get().is_some() {
                    continue;
                }
                if let Some((Symbol::Func(f), provider)) = self.lookup(&binding.name, &scope)
                    && f.ty(&*store).matches(&binding.ty)
                {
                    tracing::debug!(symbol = binding.name, library = %lib.path.display(), "lazy binding resolved");
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
        for (importer, provider) in new_refs {
            if let Some(p) = self.libs.get_mut(&provider) {
                p.refcount = p.refcount.saturating_add(1);
            }
            if let Some(i) = self.libs.get_mut(&importer) {
                i.deps.push(provider);
            }
        }
    }
}
