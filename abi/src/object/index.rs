//! Index newtypes, so that a function index is never used as a global index by mistake.

use std::fmt;

macro_rules! index {
    ($($(#[$doc:meta])* $name:ident,)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl $name {
            /// As a `usize`, for indexing a `Vec`.
            pub fn as_usize(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

index! {
    /// A function index: imported functions first, then defined ones.
    FuncIndex,
    /// A global index: imported globals first, then defined ones.
    GlobalIndex,
    /// A table index: imported tables first, then defined ones.
    TableIndex,
    /// A tag index: imported tags first, then defined ones.
    TagIndex,
    /// A type index in the type section.
    TypeIndex,
    /// A data segment index in the data section.
    SegmentIndex,
    /// A symbol index in the `linking` symbol table.
    SymbolIndex,
    /// The position of a section in the file, counting every section (custom ones too), as
    /// `reloc.*` sections name their target.
    SectionIndex,
}
