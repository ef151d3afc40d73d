//! The producer context that ends send spans when delivery reports arrive.

use std::error::Error;

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message as _};
use rdkafka::producer::{DefaultProducerContext, Partitioner, ProducerContext};
use rdkafka::statistics::Statistics;
use tracing::Span;

use super::record_delivery;
use crate::client_info::record_kafka_error;

/// The [`ProducerContext`] of [`TracedBaseProducer`](crate::TracedBaseProducer)
/// and [`TracedThreadedProducer`](crate::TracedThreadedProducer): it wraps
/// your context and ends each message's `send {topic}` span when the
/// message's delivery report arrives.
///
/// Its delivery opaque is `Box<(Span, C::DeliveryOpaque)>`: the send span and
/// your own opaque. On each delivery report it records the partition and
/// offset (or status Error and `error.type`), then calls your context's
/// [`delivery`](ProducerContext::delivery) with your opaque inside the send
/// span, then ends the span. Your callback runs with the span's subscriber
/// as the thread's default, so its events join the send span even on the
/// threaded producer's polling thread. Every other callback (logs, statistics, errors,
/// OAuth tokens, the custom partitioner) goes straight to your context.
///
/// ```
/// use rdkafka::ClientConfig;
/// use rdkafka::client::ClientContext;
/// use rdkafka::message::DeliveryResult;
/// use rdkafka::producer::{Producer as _, ProducerContext};
/// use tracewire_rdkafka::{TracedBaseProducer, TracedProducerContext};
///
/// /// Counts failed deliveries per order.
/// struct Orders;
/// impl ClientContext for Orders {}
/// impl ProducerContext for Orders {
///     type DeliveryOpaque = usize; // the order number
///     fn delivery(&self, result: &DeliveryResult<'_>, order: usize) {
///         if result.is_err() {
///             tracing::warn!(order, "not delivered"); // inside the send span
///         }
///     }
/// }
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092");
/// let producer = TracedBaseProducer::from_config_and_context(&config, Orders).unwrap();
/// let context: &TracedProducerContext<Orders> = producer.context();
/// let _yours: &Orders = context.inner();
/// ```
pub struct TracedProducerContext<C = DefaultProducerContext> {
    inner: C,
}

impl<C> TracedProducerContext<C> {
    /// Wraps `context`.
    pub const fn new(context: C) -> Self {
        TracedProducerContext { inner: context }
    }

    /// Your context.
    pub const fn inner(&self) -> &C {
        &self.inner
    }
}

impl Default for TracedProducerContext {
    fn default() -> Self {
        Self::new(DefaultProducerContext)
    }
}

impl<C: Clone> Clone for TracedProducerContext<C> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone())
    }
}

impl<C> std::fmt::Debug for TracedProducerContext<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedProducerContext")
            .field("inner", &std::any::type_name::<C>())
            .finish()
    }
}

impl<C: ClientContext> ClientContext for TracedProducerContext<C> {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = C::ENABLE_REFRESH_OAUTH_TOKEN;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.inner.log(level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        self.inner.stats(statistics);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.inner.stats_raw(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn Error>> {
        self.inner.generate_oauth_token(oauthbearer_config)
    }
}

impl<C, Part> ProducerContext<Part> for TracedProducerContext<C>
where
    C: ProducerContext<Part>,
    Part: Partitioner,
{
    type DeliveryOpaque = Box<(Span, C::DeliveryOpaque)>;

    fn delivery(
        &self,
        delivery_result: &DeliveryResult<'_>,
        delivery_opaque: Self::DeliveryOpaque,
    ) {
        let (span, opaque) = *delivery_opaque;
        match delivery_result {
            Ok(message) => record_delivery(&span, message.partition(), message.offset()),
            Err((error, _)) => record_kafka_error(&span, error),
        }
        // The report may be served on another thread than the send (the
        // threaded producer's polling thread), whose default subscriber may
        // not be the span's. Run your callback and end the span under the
        // span's own subscriber: your events land where the span does, and
        // tracing-subscriber's registry releases the span's parent through
        // the thread's default subscriber when the span closes.
        match span.with_subscriber(|(_, dispatch)| dispatch.clone()) {
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, move || {
                span.in_scope(|| self.inner.delivery(delivery_result, opaque));
                drop(span);
            }),
            None => self.inner.delivery(delivery_result, opaque),
        }
    }

    fn get_custom_partitioner(&self) -> Option<&Part> {
        self.inner.get_custom_partitioner()
    }
}
