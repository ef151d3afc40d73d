//! Marking a span failed, and naming an error's type (`error.type`): one
//! home for every integration (HTTP, SQL, Kafka, the layer's own
//! exception events).
//!
//! A span marks failure through fields it declares empty and the layer
//! reads: `otel.status_code`, `otel.status_message` and `error.type`
//! ([`record_error`] records all three). Integrations with a protocol code
//! (an SQLSTATE, a librdkafka error code, an HTTP status) pass that code as
//! the error type; others name the error's Rust type ([`error_type_name`]
//! when the type is known statically, [`error_type_of`] for a
//! `&dyn Error`).

use std::error::Error;
use std::fmt;

use tracing::Span;

/// Sets status Error and `error.type` on `span`, and `message` as the
/// status message when there is one. The span must declare the fields
/// `otel.status_code`, `error.type` and (for the message)
/// `otel.status_message`, empty at creation.
///
/// ```
/// use tracing::field::Empty;
/// use tracing_subscriber::prelude::*;
/// use tracewire::testing::InMemoryExporter;
/// use tracewire::{Status, TracewireLayer};
///
/// let exporter = InMemoryExporter::new();
/// let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("GET", otel.status_code = Empty,
///         otel.status_message = Empty, error.type = Empty);
///     tracewire::error::record_error(&span, "timeout", Some(&"deadline exceeded"));
/// });
/// let span = exporter.span("GET");
/// assert_eq!(span.status, Status::Error { message: "deadline exceeded".into() });
/// assert_eq!(span.attribute("error.type").unwrap().as_str(), Some("timeout"));
/// ```
pub fn record_error(span: &Span, error_type: &str, message: Option<&dyn fmt::Display>) {
    span.record("otel.status_code", "error");
    span.record("error.type", error_type);
    if let Some(message) = message {
        span.record("otel.status_message", tracing::field::display(message));
    }
}

/// A low-cardinality `error.type` for an error value of type `E`: the type
/// path without generic arguments (`hyper_util::client::legacy::Error`);
/// `_OTHER` for a boxed error, whose type says nothing.
///
/// ```
/// use tracewire::error::error_type_name;
///
/// assert_eq!(error_type_name::<std::io::Error>(), "std::io::error::Error");
/// assert_eq!(error_type_name::<Box<dyn std::error::Error>>(), "_OTHER");
/// ```
pub fn error_type_name<E: ?Sized>() -> &'static str {
    let name = std::any::type_name::<E>();
    if name.starts_with("alloc::boxed::Box<") {
        return "_OTHER";
    }
    name.split('<').next().unwrap_or(name)
}

/// The type name of an error known only as `&dyn Error`, when it can be
/// told: `std::io::Error` by downcast, else the leading type name of its
/// `Debug` form (`ParseIntError { kind: InvalidDigit }` gives
/// `ParseIntError`); `None` when the `Debug` form does not start with one.
///
/// ```
/// use tracewire::error::error_type_of;
///
/// let parse = "x".parse::<i32>().unwrap_err();
/// assert_eq!(error_type_of(&parse).as_deref(), Some("ParseIntError"));
/// ```
pub fn error_type_of(err: &(dyn Error + 'static)) -> Option<String> {
    if err.is::<std::io::Error>() {
        return Some("std::io::Error".to_owned());
    }
    let debug = format!("{err:?}");
    let end = debug
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(debug.len());
    let (ident, rest) = debug.split_at(end);
    let looks_like_type = ident.starts_with(|c: char| c.is_ascii_uppercase())
        && (rest.is_empty() || rest.starts_with(" {") || rest.starts_with('('));
    looks_like_type.then(|| ident.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct MyError;
    impl fmt::Display for MyError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it broke")
        }
    }
    impl Error for MyError {}

    #[test]
    fn a_dyn_error_is_named_by_downcast_or_its_debug_form() {
        let parse = "x".parse::<i32>().unwrap_err();
        assert_eq!(error_type_of(&parse).as_deref(), Some("ParseIntError"));
        assert_eq!(error_type_of(&MyError).as_deref(), Some("MyError"));
        let io = std::io::Error::other("disk");
        assert_eq!(error_type_of(&io).as_deref(), Some("std::io::Error"));
    }

    #[test]
    fn a_static_error_type_is_its_path_without_generics() {
        assert_eq!(error_type_name::<std::io::Error>(), "std::io::error::Error");
        assert_eq!(error_type_name::<Box<dyn Error + Send + Sync>>(), "_OTHER");
        assert_eq!(
            error_type_name::<std::convert::Infallible>(),
            "core::convert::Infallible"
        );
    }
}
