//! Reading and writing trace context in carriers: HTTP headers, Kafka
//! message headers, or any key/value map.
//!
//! A [`Propagator`] extracts a [`Context`] from an [`Extractor`] and injects
//! one into an [`Injector`]. [`TraceContextPropagator`] (W3C `traceparent` and
//! `tracestate`) and [`BaggagePropagator`] (W3C `baggage`) are the defaults;
//! [`B3Propagator`] speaks Zipkin's B3; [`CompositePropagator`] runs several.
//!
//! ```
//! use http::HeaderMap;
//! use tracewire::propagation::{Propagator, TraceContextPropagator};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "traceparent",
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
//! );
//! let cx = TraceContextPropagator::new().extract(&headers);
//! let span = cx.span_context().unwrap();
//! assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert!(span.is_sampled() && span.is_remote());
//! ```

mod b3;
mod baggage;
mod carrier;
mod composite;
mod trace_context;

pub use b3::{B3Encoding, B3Propagator};
pub use baggage::BaggagePropagator;
pub use carrier::{Extractor, Injector};
pub use composite::{CompositePropagator, PropagatorSelectionError};
pub use trace_context::{TraceContextPropagator, format_traceparent, parse_traceparent};

use crate::Context;

/// Reads and writes one propagation format.
///
/// Extraction never fails: a missing or invalid field yields a context
/// without it, so bad input from a caller starts a new trace rather than
/// breaking the request.
pub trait Propagator: Send + Sync + std::fmt::Debug {
    /// Writes the fields of `cx` this format carries into `injector`,
    /// replacing earlier values of those fields.
    fn inject(&self, cx: &Context, injector: &mut dyn Injector);

    /// Reads this format's fields from `extractor` into `cx`, keeping what
    /// `cx` holds that this format does not carry.
    fn extract_into(&self, extractor: &dyn Extractor, cx: Context) -> Context;

    /// Reads this format's fields from `extractor` into a new context.
    fn extract(&self, extractor: &dyn Extractor) -> Context {
        self.extract_into(extractor, Context::new())
    }

    /// The field names this format reads and writes (lowercase).
    fn fields(&self) -> &[&'static str];
}

static GLOBAL: std::sync::RwLock<Option<std::sync::Arc<dyn Propagator>>> =
    std::sync::RwLock::new(None);

/// The process-wide propagator that instrumentation uses unless told
/// otherwise: the one given to [`set_global`], else W3C Trace Context and
/// Baggage.
///
/// ```
/// let fields = tracewire::propagation::global().fields().to_vec();
/// assert!(fields.contains(&"traceparent"));
/// ```
pub fn global() -> std::sync::Arc<dyn Propagator> {
    let current = GLOBAL
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    current.unwrap_or_else(|| {
        static DEFAULT: std::sync::OnceLock<std::sync::Arc<dyn Propagator>> =
            std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| std::sync::Arc::new(CompositePropagator::default()))
            .clone()
    })
}

/// Sets the process-wide propagator (for example from `OTEL_PROPAGATORS`,
/// which `tracewire::init` does).
///
/// ```
/// use tracewire::propagation::{B3Propagator, set_global};
///
/// set_global(B3Propagator::new());
/// assert_eq!(tracewire::propagation::global().fields(), &["b3"]);
/// ```
pub fn set_global(propagator: impl Propagator + 'static) {
    *GLOBAL
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::sync::Arc::new(propagator));
}
