//! Capturing allow-listed headers as `http.{request,response}.header.<name>`.

use http::{HeaderMap, HeaderName};
use tracewire::SpanExt as _;
use tracing::Span;

/// Sets `{prefix}{name}` for every header in `names` present in `headers`.
/// Values that are not visible ASCII are skipped; several values are
/// joined with `,` (tracewire attribute values have no array type).
pub(crate) fn record(span: &Span, prefix: &str, names: &[HeaderName], headers: &HeaderMap) {
    for name in names {
        let mut joined = String::new();
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else { continue };
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(value);
        }
        if !joined.is_empty() {
            span.set_attribute(format!("{prefix}{}", name.as_str()), joined);
        }
    }
}
