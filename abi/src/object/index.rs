//! Index newtypes, so that a function index is never used as a global index by mistake.

/// Defines `u32` index newtypes: `Copy`, ordered, hashable, `Default` (0), `Display` as the number, with
/// `as_usize` for indexing a `Vec`. Each item is a name with its doc comment. The linker uses
/// it for its own index spaces too, as `pymode_abi::index!`.
#[macro_export]
macro_rules! index {
    ($($(#[$doc:meta])* $name:ident,)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl $name {
            /// As a `usize`, for indexing a `Vec`.
            pub fn as_usize(self) -> usize {
                self.0 as usize
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

crate::index! {
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
