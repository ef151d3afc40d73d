//! Several propagators run as one, and their selection by `OTEL_PROPAGATORS`.

use std::sync::Arc;

use super::carrier::{Extractor, Injector};
use super::{B3Encoding, B3Propagator, BaggagePropagator, Propagator, TraceContextPropagator};
use crate::Context;

/// Runs several propagators: each injects its fields; on extraction each
/// reads its fields into the context the previous ones produced, so the last
/// valid span context wins.
///
/// The default is W3C Trace Context then W3C Baggage, as in OpenTelemetry.
///
/// ```
/// use tracewire::propagation::{CompositePropagator, Propagator};
///
/// let default = CompositePropagator::default();
/// assert_eq!(default.fields(), &["traceparent", "tracestate", "baggage"]);
///
/// let (b3_and_w3c, errors) = CompositePropagator::from_otel_propagators(Some("b3multi,tracecontext"));
/// assert!(errors.is_empty());
/// assert!(b3_and_w3c.fields().contains(&"x-b3-traceid"));
/// ```
#[derive(Clone, Debug)]
pub struct CompositePropagator {
    propagators: Vec<Arc<dyn Propagator>>,
    fields: Vec<&'static str>,
}

/// A name in `OTEL_PROPAGATORS` that tracewire does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported propagator {name:?} in OTEL_PROPAGATORS (known: tracecontext, baggage, b3, b3multi, none)"
)]
pub struct PropagatorSelectionError {
    /// The name as given.
    pub name: String,
}

impl CompositePropagator {
    /// A composite of `propagators`, run in order.
    pub fn new(propagators: Vec<Arc<dyn Propagator>>) -> Self {
        let mut fields: Vec<&'static str> = Vec::new();
        for field in propagators.iter().flat_map(|p| p.fields().iter()) {
            if !fields.contains(field) {
                fields.push(field);
            }
        }
        CompositePropagator {
            propagators,
            fields,
        }
    }

    /// The propagators named in an `OTEL_PROPAGATORS` value (comma-separated:
    /// `tracecontext`, `baggage`, `b3`, `b3multi`, `none`), with an error for
    /// every unknown name, which is skipped. Unset or empty selects the
    /// default; `none` alone selects no propagation.
    pub fn from_otel_propagators(value: Option<&str>) -> (Self, Vec<PropagatorSelectionError>) {
        let names: Vec<&str> = value
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return (Self::default(), Vec::new());
        }
        let mut selected: Vec<Arc<dyn Propagator>> = Vec::new();
        let mut errors = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for name in names {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                continue;
            }
            match name.as_str() {
                "tracecontext" => selected.push(Arc::new(TraceContextPropagator::new())),
                "baggage" => selected.push(Arc::new(BaggagePropagator::new())),
                "b3" => selected.push(Arc::new(B3Propagator::new())),
                "b3multi" => selected.push(Arc::new(B3Propagator::with_encoding(
                    B3Encoding::MultipleHeader,
                ))),
                "none" => {}
                _ => errors.push(PropagatorSelectionError { name: name.clone() }),
            }
            seen.push(name);
        }
        (Self::new(selected), errors)
    }

    /// The propagators `OTEL_PROPAGATORS` selects in this process's
    /// environment, with an error for each unknown name.
    pub fn from_env() -> (Self, Vec<PropagatorSelectionError>) {
        Self::from_otel_propagators(std::env::var("OTEL_PROPAGATORS").ok().as_deref())
    }

    /// The propagators, in order.
    pub fn propagators(&self) -> &[Arc<dyn Propagator>] {
        &self.propagators
    }
}

impl Default for CompositePropagator {
    fn default() -> Self {
        Self::new(vec![
            Arc::new(TraceContextPropagator::new()),
            Arc::new(BaggagePropagator::new()),
        ])
    }
}

impl Propagator for CompositePropagator {
    fn inject(&self, cx: &Context, injector: &mut dyn Injector) {
        for propagator in &self.propagators {
            propagator.inject(cx, injector);
        }
    }

    fn extract_into(&self, extractor: &dyn Extractor, cx: Context) -> Context {
        self.propagators
            .iter()
            .fold(cx, |cx, p| p.extract_into(extractor, cx))
    }

    fn fields(&self) -> &[&'static str] {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn default_carries_trace_and_baggage() {
        let headers = vec![
            ("traceparent".to_owned(), W3C.to_owned()),
            ("baggage".to_owned(), "k=v".to_owned()),
        ];
        let cx = CompositePropagator::default().extract(&headers);
        assert!(cx.span_context().is_some());
        assert_eq!(cx.baggage().get("k"), Some("v"));
        let mut out = Vec::<(String, String)>::new();
        CompositePropagator::default().inject(&cx, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn otel_propagators_selection() {
        let (p, errors) =
            CompositePropagator::from_otel_propagators(Some(" tracecontext , b3, xray,none,b3"));
        assert_eq!(
            errors,
            vec![PropagatorSelectionError {
                name: "xray".into()
            }]
        );
        assert_eq!(p.propagators().len(), 2);
        assert_eq!(p.fields(), &["traceparent", "tracestate", "b3"]);

        let (p, _) = CompositePropagator::from_otel_propagators(Some("none"));
        assert!(p.propagators().is_empty());
        let (p, _) = CompositePropagator::from_otel_propagators(None);
        assert_eq!(p.fields(), CompositePropagator::default().fields());
    }

    #[test]
    fn invalid_w3c_does_not_erase_valid_b3() {
        let (p, _) = CompositePropagator::from_otel_propagators(Some("b3,tracecontext"));
        let headers = vec![
            (
                "b3".to_owned(),
                "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_owned(),
            ),
            ("traceparent".to_owned(), "garbage".to_owned()),
        ];
        assert!(p.extract(&headers).span_context().is_some());
    }
}
