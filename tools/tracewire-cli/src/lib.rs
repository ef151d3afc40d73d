//! The tracewire trace viewer as a library: read OTLP/JSON lines files (as
//! written by tracewire's JSON-lines file exporter, `OTEL_TRACES_EXPORTER=file`,
//! or the OpenTelemetry Collector's `file` exporter), merge spans from many
//! files and services by trace id, and analyse each trace:
//!
//! - a waterfall of its spans ([`render::view`]),
//! - its critical path, with the self-time of each span on it and the
//!   bottleneck ([`critical_path()`], [`render::critical_path`]),
//! - a comparison of two traces: spans new, missing, slower or faster
//!   ([`diff()`], [`render::diff`]),
//! - JSON for scripts ([`json`]).
//!
//! Traces can also be read from a running collector (`tracewire collect`)
//! over its JSON API ([`remote::Client`]), and shown as a web page next to
//! a collector's store ([`web::serve`]).
//!
//! The `tracewire` binary is a thin command line over this crate.
//!
//! ```
//! use tracewire_cli::{RenderOptions, Traces};
//!
//! // Two requests to the same endpoint, each exported as one OTLP/JSON line.
//! let input = [
//!     request("4bf92f3577b34da6a3ce929d0e0e4736", 100, 40),
//!     request("5a1c3b0d2e9f4a8b9c7d6e5f4a3b2c1d", 130, 100),
//! ]
//! .join("\n");
//! let traces = Traces::from_reader(input.as_bytes())?; // or Traces::from_paths(["gateway.jsonl", "orders.jsonl"])
//! assert_eq!(traces.len(), 2);
//!
//! let fast = traces.find("4bf9")?; // a unique prefix of the trace id
//! let slow = traces.find("5a1c")?;
//!
//! let path = tracewire_cli::critical_path(slow);
//! assert_eq!(slow.span(path.bottleneck().span).name, "SELECT orders");
//!
//! let diff = tracewire_cli::diff(fast, slow);
//! assert_eq!(diff.matched[0].key.part().name, "SELECT orders");
//! assert_eq!(diff.matched[0].delta_nanos(), 60_000_000);
//!
//! let options = RenderOptions::new(); // plain text; `.with_color(true)` for a terminal
//! print!("{}", tracewire_cli::render::view(slow, &options));
//! print!("{}", tracewire_cli::render::critical_path(slow, &path, &options));
//! print!("{}", tracewire_cli::render::diff(&diff, &options));
//! println!("{}", tracewire_cli::json::diff(&diff, 0));
//!
//! /// A gateway span of `total_ms` calling an orders span holding a query
//! /// of `query_ms`.
//! fn request(trace_id: &str, total_ms: u64, query_ms: u64) -> String {
//!     let t0: u64 = 1_700_000_000_000_000_000;
//!     let ms = |n: u64| (t0 + n * 1_000_000).to_string();
//!     let span = |id: &str, parent: &str, name: &str, start: u64, end: u64| {
//!         format!(
//!             r#"{{"traceId":"{trace_id}","spanId":"{id}","parentSpanId":"{parent}","name":"{name}","startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}"#,
//!             ms(start),
//!             ms(end)
//!         )
//!     };
//!     let service = |name: &str, spans: Vec<String>| {
//!         format!(
//!             r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{name}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}"#,
//!             spans.join(",")
//!         )
//!     };
//!     format!(
//!         r#"{{"resourceSpans":[{},{}]}}"#,
//!         service("gateway", vec![span("0000000000000001", "", "GET /orders", 0, total_ms)]),
//!         service(
//!             "orders",
//!             vec![
//!                 span("0000000000000002", "0000000000000001", "list orders", 5, total_ms - 5),
//!                 span("0000000000000003", "0000000000000002", "SELECT orders", 10, 10 + query_ms),
//!             ]
//!         ),
//!     )
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reading input
//!
//! Each line is one OTLP `ExportTraceServiceRequest` in the OTLP/JSON
//! encoding (hex trace and span ids, timestamps as decimal strings or
//! numbers; span kinds and status codes as numbers, or as their names as
//! some encoders write them). A span's service is its resource's `service.name`. Lines that
//! are not such requests are skipped and counted ([`LoadStats`]), as are
//! spans with missing or zero ids; a span id read twice is kept once.
//!
//! # Clock skew, orphans, zero durations
//!
//! Spans from different machines may disagree about time. The waterfall
//! never draws a child before its parent (it is marked instead), and the
//! critical path clamps child times into their parent's. A span whose parent
//! is not in the input (its service's file was not loaded) is an *orphan*:
//! shown at the top level and marked. Zero-duration spans are drawn as a
//! thin mark and take no time on the critical path.

pub mod critical_path;
pub mod diff;
pub mod json;
mod load;
mod model;
pub mod remote;
pub mod render;
pub mod web;

pub use critical_path::{CriticalPath, Section, Step, critical_path};
pub use diff::{KeyPart, Matched, SpanKey, TraceDiff, Unmatched, diff};
pub use load::{BadLine, FindError, LoadError, LoadStats, Loader, Traces};
pub use model::{Event, Span, Trace, TraceError, UNKNOWN_SERVICE};
pub use render::RenderOptions;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
