//! Start-up as a user's process does it: `tracewire::init()` from the
//! environment, in a child process (`src/bin/startup-probe.rs`), with
//! production log levels, `OTEL_SDK_DISABLED` and hostile values for every
//! variable tracewire reads.

mod config;
mod levels;
mod support;
