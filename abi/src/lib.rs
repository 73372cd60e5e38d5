//! pymode-abi
