//! Benchmarks live under `benches/benches/`; this crate only carries their dependencies.
