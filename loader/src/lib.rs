//! pymode-loader
