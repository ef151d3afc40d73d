//! Cross-crate tests of the tracewire family: see `tests/`. This library is
//! empty; the tests are grouped binaries (`tests/<area>/main.rs`).
