//! The traced [`BaseProducer`] and [`ThreadedProducer`]: send spans that end
//! in the producer context's delivery callback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext as _;
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DefaultProducerContext, NoCustomPartitioner, Partitioner, Producer,
    ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::util::{IntoOpaque, Timeout};
use tracewire::propagation::Propagator;
use tracing::Span;

use super::{Outgoing, TracedProducerContext};
use crate::client_info::{
    ClientTracing, client_constructors, propagator_method, record_kafka_error,
};

/// What `send` returns: the error and the record given back, as rdkafka's
/// producers do.
type SendResult<'a, K, P, O> = Result<(), (KafkaError, BaseRecord<'a, K, P, O>)>;

/// How long dropping a producer waits for the delivery reports of the
/// messages it purges (they normally all arrive at once).
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Starts the send span, puts its context in the record's headers and the
/// span beside the user's opaque, and sends with `send`. A record the
/// producer refuses ends its span with Error at once and comes back with the
/// user's opaque (and the injected headers).
#[allow(clippy::result_large_err)] // rdkafka's own signature
fn send_traced<'a, K, P, O>(
    tracing: &ClientTracing,
    record: BaseRecord<'a, K, P, O>,
    send: impl FnOnce(BaseRecord<'a, K, P, Box<(Span, O)>>) -> SendResult<'a, K, P, Box<(Span, O)>>,
) -> SendResult<'a, K, P, O>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
    O: IntoOpaque,
{
    let BaseRecord {
        topic,
        partition,
        payload,
        key,
        timestamp,
        headers,
        delivery_opaque,
    } = record;
    let (span, headers) = tracing.start_send(
        &Outgoing {
            topic,
            key: key.map(ToBytes::to_bytes),
            tombstone: payload.is_none(),
            partition,
        },
        headers,
    );
    let traced = BaseRecord {
        topic,
        partition,
        payload,
        key,
        timestamp,
        headers: Some(headers),
        delivery_opaque: Box::new((span, delivery_opaque)),
    };
    send(traced).map_err(|(error, record)| {
        let BaseRecord {
            topic,
            partition,
            payload,
            key,
            timestamp,
            headers,
            delivery_opaque,
        } = record;
        let (span, delivery_opaque) = *delivery_opaque;
        record_kafka_error(&span, &error);
        drop(span);
        let record = BaseRecord {
            topic,
            partition,
            payload,
            key,
            timestamp,
            headers,
            delivery_opaque,
        };
        (error, record)
    })
}

/// Purges what `producer` still holds and serves the delivery reports, so
/// that every pending send span ends (with `PurgeQueue` or `PurgeInflight`).
fn purge_and_drain<C, Part>(
    producer: &impl Producer<TracedProducerContext<C>, Part>,
    poll: impl Fn(Duration),
) where
    C: ProducerContext<Part>,
    Part: Partitioner,
{
    if producer.in_flight_count() == 0 {
        return;
    }
    producer.purge(PurgeConfig::default().queue().inflight());
    let deadline = Instant::now() + DRAIN_LIMIT;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        poll(Duration::from_millis(10));
    }
}

/// A [`BaseProducer`] whose sends are PRODUCER spans (`send {topic}`)
/// carrying their context to consumers in the message headers.
///
/// The span is a child of the current span; its context (the current
/// span's when a filter leaves the span out) replaces any stale trace
/// headers in the record, the user's other headers are kept (as with
/// [`TracedFutureProducer`](crate::TracedFutureProducer)). The span ends when
/// the message's delivery report is served by [`poll`](Self::poll) or
/// [`flush`](Producer::flush), recording the partition and offset, or status
/// Error with `error.type`; a record the producer refuses at once (queue
/// full, unknown partition…) ends its span with Error right away.
///
/// Your own [`ProducerContext`] still gets every delivery report with your
/// opaque (see [`TracedProducerContext`]).
///
/// Dropping the producer purges the messages it still holds, as rdkafka's
/// producers do, and serves their delivery reports, so their spans end with
/// Error (`PurgeQueue` or `PurgeInflight`): flush first to deliver them.
///
/// ```no_run
/// use std::time::Duration;
/// use rdkafka::ClientConfig;
/// use rdkafka::producer::{BaseRecord, Producer as _};
/// use tracewire_rdkafka::TracedBaseProducer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092");
/// let producer: TracedBaseProducer = TracedBaseProducer::from_config(&config).unwrap();
/// producer
///     .send(BaseRecord::to("orders").key("order-7").payload("{}"))
///     .map_err(|(e, _)| e)
///     .unwrap();
/// producer.flush(Duration::from_secs(5)).unwrap(); // the send span ends here
/// ```
pub struct TracedBaseProducer<C = DefaultProducerContext, Part = NoCustomPartitioner>
where
    C: ProducerContext<Part>,
    Part: Partitioner,
{
    inner: BaseProducer<TracedProducerContext<C>, Part>,
    tracing: ClientTracing,
}

client_constructors! {
    TracedBaseProducer<C, Part> where [C: ProducerContext<Part>, Part: Partitioner] {
        tracing: ClientTracing
    }, "producer";
    impl[] TracedBaseProducer = DefaultProducerContext;
    impl[C: ProducerContext<Part>, Part: Partitioner] |config, context: C| {
        BaseProducer::from_config_and_context(config, TracedProducerContext::new(context))?
    }
}

impl<C: ProducerContext<Part>, Part: Partitioner> TracedBaseProducer<C, Part> {
    propagator_method!("Injects", tracing);

    /// The wrapped producer. Records sent through it directly get no span
    /// and no trace headers; their opaque is `Box::new((Span::none(), yours))`.
    pub fn inner(&self) -> &BaseProducer<TracedProducerContext<C>, Part> {
        &self.inner
    }

    /// Sends `record` in a `send {topic}` span, as [`BaseProducer::send`]
    /// does. The span ends when the delivery report is served.
    ///
    /// # Errors
    /// As [`BaseProducer::send`]: the error and the record, with your
    /// opaque and the trace headers. The span has ended with Error.
    #[allow(clippy::result_large_err)] // rdkafka's own signature
    pub fn send<'a, K, P>(
        &self,
        record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
    ) -> SendResult<'a, K, P, C::DeliveryOpaque>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        send_traced(&self.tracing, record, |traced| self.inner.send(traced))
    }

    /// Serves delivery reports (ending their send spans) and other events
    /// for up to `timeout`, as [`BaseProducer::poll`] does.
    pub fn poll<T: Into<Timeout>>(&self, timeout: T) {
        self.inner.poll(timeout);
    }
}

impl<C: ProducerContext<Part>, Part: Partitioner> Drop for TracedBaseProducer<C, Part> {
    fn drop(&mut self) {
        purge_and_drain(&self.inner, |timeout| self.inner.poll(timeout));
    }
}

/// A [`ThreadedProducer`] whose sends are PRODUCER spans (`send {topic}`)
/// carrying their context to consumers in the message headers.
///
/// As [`TracedBaseProducer`], except that the producer's polling thread
/// serves the delivery reports, so each span ends as soon as its report
/// arrives. Clones share the producer; dropping the last one purges the
/// messages still held and ends their spans with Error (flush first to
/// deliver them).
///
/// ```no_run
/// use std::time::Duration;
/// use rdkafka::ClientConfig;
/// use rdkafka::producer::{BaseRecord, Producer as _};
/// use tracewire_rdkafka::TracedThreadedProducer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092");
/// let producer: TracedThreadedProducer = TracedThreadedProducer::from_config(&config).unwrap();
/// let request = tracing::info_span!("POST /orders");
/// request.in_scope(|| {
///     producer
///         .send(BaseRecord::to("orders").key("order-7").payload("{}"))
///         .map_err(|(e, _)| e)
/// })
/// .unwrap();
/// producer.flush(Duration::from_secs(5)).unwrap();
/// ```
pub struct TracedThreadedProducer<C = DefaultProducerContext, Part = NoCustomPartitioner>
where
    C: ProducerContext<Part> + 'static,
    Part: Partitioner,
{
    inner: Arc<Threaded<C, Part>>,
    tracing: ClientTracing,
}

/// The shared producer; the last clone's drop drains it.
struct Threaded<C, Part>(ThreadedProducer<TracedProducerContext<C>, Part>)
where
    C: ProducerContext<Part> + 'static,
    Part: Partitioner;

impl<C: ProducerContext<Part> + 'static, Part: Partitioner> Drop for Threaded<C, Part> {
    fn drop(&mut self) {
        purge_and_drain(&self.0, |timeout| self.0.poll(timeout));
    }
}

impl<C: ProducerContext<Part> + 'static, Part: Partitioner> Clone
    for TracedThreadedProducer<C, Part>
{
    fn clone(&self) -> Self {
        TracedThreadedProducer {
            inner: self.inner.clone(),
            tracing: self.tracing.clone(),
        }
    }
}

client_constructors! {
    TracedThreadedProducer<C, Part> where [C: ProducerContext<Part> + 'static, Part: Partitioner] {
        tracing: ClientTracing
    }, "producer (and its polling thread)";
    impl[] TracedThreadedProducer = DefaultProducerContext;
    impl[C: ProducerContext<Part> + 'static, Part: Partitioner + Send + Sync + 'static]
    |config, context: C| {
        let context = TracedProducerContext::new(context);
        Arc::new(Threaded(ThreadedProducer::from_config_and_context(config, context)?))
    }
}

impl<C: ProducerContext<Part> + 'static, Part: Partitioner> TracedThreadedProducer<C, Part> {
    propagator_method!("Injects", tracing);

    /// The wrapped producer. Records sent through it directly get no span
    /// and no trace headers; their opaque is `Box::new((Span::none(), yours))`.
    pub fn inner(&self) -> &ThreadedProducer<TracedProducerContext<C>, Part> {
        &self.inner.0
    }

    /// Sends `record` in a `send {topic}` span, as
    /// [`ThreadedProducer::send`] does. The span ends when the delivery
    /// report arrives.
    ///
    /// # Errors
    /// As [`ThreadedProducer::send`]: the error and the record, with your
    /// opaque and the trace headers. The span has ended with Error.
    #[allow(clippy::result_large_err)] // rdkafka's own signature
    pub fn send<'a, K, P>(
        &self,
        record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
    ) -> SendResult<'a, K, P, C::DeliveryOpaque>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        send_traced(&self.tracing, record, |traced| self.inner.0.send(traced))
    }
}

delegate_producer!(
    impl<C, Part> Producer<TracedProducerContext<C>, Part> for TracedBaseProducer<C, Part>
    where
        C: ProducerContext<Part>,
        Part: Partitioner,
);
delegate_producer!(
    impl<C, Part> Producer<TracedProducerContext<C>, Part> for TracedThreadedProducer<C, Part>
    where
        C: ProducerContext<Part> + 'static,
        Part: Partitioner,
);
