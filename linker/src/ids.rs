//! The linker's index types: ids of its inputs and of their symbols and functions, and the
//! output's index spaces. Each is its own type, so that an input's function position is never
//! taken for an output function index, or a table slot for a global.

pymode_abi::index! {
    /// An object's position in [`Inputs::objects`](crate::input::Inputs::objects).
    FileId,
    /// A resolved symbol: an index into [`Resolution::symbols`](crate::resolve::Resolution::symbols).
    SymId,
    /// A defined function's position among its object's defined functions (its function
    /// index minus the object's imported functions).
    DefinedFunc,
    /// A function index of the output: imports first, then the objects' kept functions, then
    /// the synthesized ones.
    OutFuncIndex,
    /// A global index of the output: imports first, then the defined globals.
    OutGlobalIndex,
    /// A type index of the output's type section.
    OutTypeIndex,
    /// A slot of the module's own table range, relative to `__table_base`.
    TableSlot,
}

/// One defined function of one object: what the output's code section is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InputFunc {
    /// The object.
    pub file: FileId,
    /// Its position among that object's defined functions.
    pub function: DefinedFunc,
}
