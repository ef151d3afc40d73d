//! The entity that produces telemetry: `service.name` and friends.

use crate::baggage::percent_decode;
use std::borrow::Cow;

use crate::sampling::ConfigWarning;
use crate::{KeyValue, Value};

/// Attributes describing the service that produced the spans, sent once per
/// export. Always has `service.name` and the `telemetry.sdk.*` attributes.
///
/// ```
/// use tracewire::export::Resource;
///
/// let resource = Resource::new("checkout").with_attribute("deployment.environment.name", "prod");
/// assert_eq!(resource.service_name(), "checkout");
/// assert_eq!(resource.get("telemetry.sdk.name").and_then(|v| v.as_str()), Some("tracewire"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    attributes: Vec<KeyValue>,
}

impl Resource {
    /// A resource for `service_name` with the SDK attributes.
    pub fn new(service_name: impl Into<Cow<'static, str>>) -> Self {
        Resource {
            attributes: vec![
                KeyValue::new("service.name", Value::String(service_name.into())),
                KeyValue::new("telemetry.sdk.name", "tracewire"),
                KeyValue::new("telemetry.sdk.language", "rust"),
                KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
            ],
        }
    }

    /// This resource with `key` set to `value` (replacing an earlier value).
    pub fn with_attribute(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Value>,
    ) -> Self {
        let kv = KeyValue::new(key, value);
        match self.attributes.iter_mut().find(|a| a.key == kv.key) {
            Some(existing) => existing.value = kv.value,
            None => self.attributes.push(kv),
        }
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// The `service.name`.
    pub fn service_name(&self) -> &str {
        self.get("service.name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Every attribute, `service.name` first.
    pub fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }

    /// The default service name: `unknown_service:<executable name>`.
    pub fn default_service_name() -> String {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        match exe {
            Some(name) => format!("unknown_service:{name}"),
            None => "unknown_service".to_owned(),
        }
    }

    /// The resource from `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
    /// (pass their values). `OTEL_SERVICE_NAME` wins over a `service.name`
    /// in the attributes. Attributes are `key=value` pairs separated by
    /// commas, percent-encoded; any decoding error discards the whole value
    /// with a warning.
    ///
    /// ```
    /// use tracewire::export::Resource;
    ///
    /// let (r, warnings) = Resource::from_otel(None, Some("service.name=users,team=core%20platform"));
    /// assert_eq!(r.service_name(), "users");
    /// assert_eq!(r.get("team").and_then(|v| v.as_str()), Some("core platform"));
    /// assert!(warnings.is_empty());
    ///
    /// let (r, _) = Resource::from_otel(Some("auth"), Some("service.name=users"));
    /// assert_eq!(r.service_name(), "auth");
    /// ```
    pub fn from_otel(
        service_name: Option<&str>,
        attributes: Option<&str>,
    ) -> (Self, Vec<ConfigWarning>) {
        let mut warnings = Vec::new();
        let mut pairs = Vec::new();
        if let Some(raw) = attributes.map(str::trim).filter(|s| !s.is_empty()) {
            match parse_resource_attributes(raw) {
                Some(parsed) => pairs = parsed,
                None => warnings.push(ConfigWarning {
                    variable: "OTEL_RESOURCE_ATTRIBUTES",
                    value: raw.to_owned(),
                    reason: "expected comma-separated key=value pairs, percent-encoded; the whole value is discarded",
                }),
            }
        }
        let name = service_name
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                pairs
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(Self::default_service_name);
        let mut resource = Resource::new(name);
        for (k, v) in pairs {
            if k != "service.name" {
                resource = resource.with_attribute(k, v);
            }
        }
        (resource, warnings)
    }
}

/// Parses `k=v,k2=v2` with percent-decoding; `None` on any error.
fn parse_resource_attributes(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split(',')
        .filter(|member| !member.trim().is_empty())
        .map(|member| {
            let (k, v) = member.split_once('=')?;
            let (k, v) = (
                percent_decode(k.trim().as_bytes())?,
                percent_decode(v.trim().as_bytes())?,
            );
            (!k.is_empty()).then_some((k, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_service_name_names_the_executable() {
        let (r, w) = Resource::from_otel(None, None);
        assert!(w.is_empty());
        assert!(
            r.service_name().starts_with("unknown_service:"),
            "{}",
            r.service_name()
        );
    }

    #[test]
    fn bad_encoding_discards_all_attributes() {
        let (r, w) = Resource::from_otel(Some("svc"), Some("a=1,b=%zz"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].variable, "OTEL_RESOURCE_ATTRIBUTES");
        assert!(r.get("a").is_none());
        assert_eq!(r.service_name(), "svc");
        let (_, w) = Resource::from_otel(Some("svc"), Some("novalue"));
        assert_eq!(w.len(), 1);
        // A sign is not a hex digit.
        let (r, w) = Resource::from_otel(Some("svc"), Some("a=%+f"));
        assert_eq!((w.len(), r.get("a")), (1, None));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let (r, w) = Resource::from_otel(Some(" "), Some(""));
        assert!(w.is_empty());
        assert!(r.service_name().starts_with("unknown_service"));
    }
}
