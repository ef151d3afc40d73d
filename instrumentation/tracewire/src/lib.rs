//! Distributed tracing for the `tracing` ecosystem: W3C Trace Context,
//! Baggage and B3 propagation, head sampling, a `tracing-subscriber` layer
//! that gives spans W3C trace and span ids, and log lines that carry
//! them.
//!
//! Spans are ordinary `tracing` spans. [`TracewireLayer`] assigns W3C ids
//! when a span is created (a child inherits its parent's trace), records
//! fields and events of sampled spans only, and hands each finished sampled
//! span to a [`SpanProcessor`](processor::SpanProcessor). Propagators read
//! an incoming request's context; [`with_remote_parent`] creates the server
//! span under it; [`SpanExt::context`] gives what to inject into an
//! outgoing request. [`fmt::CorrelatedFormat`] stamps `trace_id`, `span_id`
//! and `trace_flags` on every log line inside a span, sampled or not.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use tracewire::propagation::{Propagator, TraceContextPropagator};
//! use tracewire::{testing::InMemoryExporter, SpanExt, TracewireLayer};
//!
//! let exporter = InMemoryExporter::new();
//! let subscriber = tracing_subscriber::registry()
//!     .with(TracewireLayer::new(exporter.clone()))
//!     .with(tracing_subscriber::fmt::layer().event_format(tracewire::fmt::CorrelatedFormat::text()));
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("GET /users/{id}", otel.kind = "server", user.id = 7);
//!     let _guard = span.enter();
//!     tracing::info!("loading user"); // ... trace_id=… span_id=… trace_flags=03
//!
//!     // Propagate to the next service.
//!     let mut headers = http::HeaderMap::new();
//!     TraceContextPropagator::new().inject(&span.context(), &mut headers);
//!     assert!(headers.contains_key("traceparent"));
//! });
//!
//! assert_eq!(exporter.span("GET /users/{id}").events.len(), 1);
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `http` | yes | propagation over `http::HeaderMap`; the `http` module of HTTP semantic-convention helpers |
//! | `export` | yes | the batch span processor and exporters |

pub mod baggage;
mod context;
pub mod error;
#[cfg(feature = "export")]
pub mod export;
pub mod fmt;
#[cfg(feature = "http")]
pub mod http;
mod id;
#[cfg(feature = "otlp")]
mod init;
mod layer;
pub mod processor;
pub mod propagation;
pub mod sampling;
mod span_data;
#[cfg(feature = "export")]
pub mod tail;
pub mod testing;
pub mod trace_state;

pub use baggage::Baggage;
pub use context::{Context, SpanContext, TraceFlags};
pub use id::{HexBuf, SpanId, TraceId};
#[cfg(feature = "otlp")]
pub use init::{
    CONFIGURATION_VARIABLES, InitError, LogFormat, TracesExporter, Tracewire, TracingGuard, init,
    is_instrumentation,
};
pub use layer::{
    SetParentError, SpanExt, SpanLimits, TracewireLayer, TracewireLayerBuilder, current_context,
    current_span_context, with_remote_parent, with_remote_parent_recording,
};
pub use span_data::{
    Array, Event, InstrumentationScope, KeyValue, Link, SpanData, SpanKind, Status, Str, Value,
};
pub use trace_state::TraceState;
