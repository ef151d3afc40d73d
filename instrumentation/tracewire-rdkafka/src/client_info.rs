//! What the messaging conventions record about the client, read from its
//! configuration once.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

/// The client's identity as the messaging conventions name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientInfo {
    /// `messaging.client.id` (only when configured).
    pub(crate) client_id: Option<String>,
    /// `messaging.consumer.group.name`.
    pub(crate) group: Option<String>,
    /// `server.address` / `server.port` of the first bootstrap server.
    pub(crate) server: Option<(String, Option<u16>)>,
}

impl ClientInfo {
    pub(crate) fn from_config(config: &ClientConfig) -> Self {
        let non_empty = |key: &str| {
            config
                .get(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        ClientInfo {
            client_id: non_empty("client.id"),
            group: non_empty("group.id"),
            server: non_empty("bootstrap.servers")
                .or_else(|| non_empty("metadata.broker.list"))
                .and_then(|list| first_server(&list)),
        }
    }

    /// `messaging.client.id`, when configured.
    pub(crate) fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// `messaging.consumer.group.name`, when configured.
    pub(crate) fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// `server.address`: the first bootstrap server's host.
    pub(crate) fn server_address(&self) -> Option<&str> {
        self.server.as_ref().map(|(host, _)| host.as_str())
    }

    /// `server.port`: the first bootstrap server's port, when given.
    pub(crate) fn server_port(&self) -> Option<i64> {
        self.server
            .as_ref()
            .and_then(|(_, port)| *port)
            .map(i64::from)
    }
}

/// `host:port` of the first entry of a bootstrap list (which may name a
/// protocol, as in `PLAINTEXT://host:9092`).
fn first_server(list: &str) -> Option<(String, Option<u16>)> {
    let first = list.split(',').map(str::trim).find(|s| !s.is_empty())?;
    let first = first.rsplit_once("://").map_or(first, |(_, rest)| rest);
    match first.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some((host.to_owned(), port.parse().ok()))
        }
        _ => Some((first.to_owned(), None)),
    }
}

/// `error.type` for a Kafka error: the librdkafka error code's name when
/// there is one.
pub(crate) fn error_type(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "KafkaError".to_owned(),
    }
}

/// Marks `span` as failed by `error`: status Error with the error's
/// message, and `error.type`.
pub(crate) fn record_kafka_error(span: &tracing::Span, error: &KafkaError) {
    span.record("otel.status_code", "error");
    span.record("otel.status_message", error.to_string());
    span.record("error.type", error_type(error));
}

/// A message key as a string attribute when it is UTF-8.
pub(crate) fn key_str(key: Option<&[u8]>) -> Option<&str> {
    key.and_then(|k| std::str::from_utf8(k).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists() {
        assert_eq!(
            first_server("b1:9092,b2:9092"),
            Some(("b1".into(), Some(9092)))
        );
        assert_eq!(
            first_server(" PLAINTEXT://k:19092"),
            Some(("k".into(), Some(19092)))
        );
        assert_eq!(first_server("[::1]:9092"), Some(("::1".into(), Some(9092))));
        assert_eq!(first_server("kafka"), Some(("kafka".into(), None)));
        assert_eq!(first_server(""), None);
    }

    #[test]
    fn config_fields() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "broker:9092")
            .set("group.id", "billing")
            .set("client.id", "billing-1");
        let info = ClientInfo::from_config(&config);
        assert_eq!(info.group.as_deref(), Some("billing"));
        assert_eq!(info.client_id.as_deref(), Some("billing-1"));
        assert_eq!(info.server, Some(("broker".into(), Some(9092))));
    }
}
