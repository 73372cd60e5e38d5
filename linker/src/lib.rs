//! pymode-linker
