//! pymode-testdata
