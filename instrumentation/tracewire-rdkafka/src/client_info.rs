//! What the messaging conventions record about the client, read from its
//! configuration once, and what every traced client shares.

use std::sync::Arc;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use tracewire::propagation::Propagator;

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

/// What every traced client shares: its identity and its propagator.
#[derive(Clone)]
pub(crate) struct ClientTracing {
    pub(crate) info: Arc<ClientInfo>,
    propagator: Option<Arc<dyn Propagator>>,
}

impl std::fmt::Debug for ClientTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTracing")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ClientTracing {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        ClientTracing {
            info: Arc::new(ClientInfo::from_config(config)),
            propagator: None,
        }
    }

    pub(crate) fn set_propagator(&mut self, propagator: impl Propagator + 'static) {
        self.propagator = Some(Arc::new(propagator));
    }

    /// Runs `f` with the client's propagator (the global one unless set).
    pub(crate) fn with_propagator<T>(&self, f: impl FnOnce(&dyn Propagator) -> T) -> T {
        match &self.propagator {
            Some(propagator) => f(propagator.as_ref()),
            None => f(tracewire::propagation::global().as_ref()),
        }
    }
}

/// The builder method every traced client has: `propagator(…)`. `$verb` is
/// what it does with it ("Injects", "Extracts"); `$path` reaches the
/// client's [`ClientTracing`] from `self`.
macro_rules! propagator_method {
    ($verb:literal, $($path:ident).+) => {
        #[doc = concat!($verb, " with `propagator` instead of the global one.")]
        #[must_use]
        pub fn propagator(mut self, propagator: impl Propagator + 'static) -> Self {
            self.$($path).+.set_propagator(propagator);
            self
        }
    };
}
pub(crate) use propagator_method;

/// What every traced client has beside its own API: a `Debug` showing its
/// tracing settings, `from_config_and_context` (`$inner` creates the
/// wrapped client from `$config` and `$context`; the configuration also
/// gives the client attributes of the spans) and `from_config` with the
/// default context.
macro_rules! client_constructors {
    (
        $name:ident<$($g:ident),*> where [$($bounds:tt)*] { tracing: $tracing:ident }, $what:literal;
        impl[$($dg:tt)*] $default:ty = $default_cx:expr;
        impl[$($cg:tt)*] |$config:ident, $context:ident: $cx:ty| $inner:expr
    ) => {
        impl<$($g),*> std::fmt::Debug for $name<$($g),*>
        where
            $($bounds)*
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("tracing", &self.tracing)
                    .finish_non_exhaustive()
            }
        }

        impl<$($dg)*> $default {
            #[doc = concat!("Creates the ", $what, " from `config`.")]
            ///
            /// # Errors
            /// When librdkafka rejects the configuration.
            pub fn from_config(config: &rdkafka::ClientConfig) -> rdkafka::error::KafkaResult<Self> {
                Self::from_config_and_context(config, $default_cx)
            }
        }

        impl<$($cg)*> $name<$($g),*> {
            #[doc = concat!("Creates the ", $what, " from `config` with your `context`, which")]
            /// keeps receiving every callback. The configuration also gives
            /// what the spans record about the client (`messaging.client.id`,
            /// `server.address`, `server.port`, the consumer group).
            ///
            /// # Errors
            /// When librdkafka rejects the configuration.
            pub fn from_config_and_context(
                $config: &rdkafka::ClientConfig,
                $context: $cx,
            ) -> rdkafka::error::KafkaResult<Self> {
                Ok($name {
                    inner: $inner,
                    tracing: $tracing::new($config),
                })
            }
        }
    };
}
pub(crate) use client_constructors;

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
    tracewire::error::record_error(span, &error_type(error), Some(error));
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
