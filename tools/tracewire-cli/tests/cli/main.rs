//! Tests of the `tracewire` binary on the fixed input files in
//! `tests/data/`, and of reading what the core's file exporter writes.
//!
//! The shop files hold two traces of `POST /checkout` across five services
//! (one file per service, as each process writes its own). Times are whole
//! milliseconds after 2023-11-14 22:13:20 UTC:
//!
//! ```text
//! trace A 4bf92f35…             trace B 5a1c3b0d…
//! gateway POST /checkout 0–100   0–160
//!   gateway POST          2–12    2–12
//!     auth POST /verify    3–11    3–11
//!       auth SELECT users  4–9     4–7
//!   gateway POST          15–95   15–155
//!     orders POST /orders  16–94   16–154
//!       SELECT products    20–30   20–30
//!       SELECT products    30–40   (cache get 30–32 instead)
//!       orders POST        42–90   35–150
//!         payments POST /charge 43–89   36–149
//!           charge card    45–85   38–98 (error), retried 100–145
//!       send order.created 90–92   150–152
//!         notifications process order.created 93–110   153–170
//! ```
//!
//! `skew.jsonl` holds a trace whose backend clock runs behind, with a
//! zero-duration span and an orphan; `bad.jsonl` holds three bad lines and
//! one good one.
//!
//! `remote` runs the commands with `--from URL` against a collector started
//! in the test process.

mod collect;
mod commands;
mod errors;
mod exporter;
mod remote;
mod support;
