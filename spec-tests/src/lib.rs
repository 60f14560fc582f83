//! Shared harness for the black-box tests of `berth-runtime` (runtime) and `berth` (manager).
//! The tests themselves live in `tests/`.
pub mod cri;
pub mod engines;
pub mod manager;
pub mod rootless;
pub mod runtime;
