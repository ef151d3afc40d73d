//! Traced consumers: a CONSUMER span per received message; for a batch, a
//! CLIENT span covering the poll and a CONSUMER span for its processing.

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt as _};
use rdkafka::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, ConsumerContext, DefaultConsumerContext, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message as _, OwnedMessage};
use rdkafka::util::{AsyncRuntime, DefaultRuntime};
use tracewire::propagation::Propagator;
use tracewire::{Context, SpanContext, SpanExt as _, with_remote_parent};
use tracing::Span;
use tracing::field::Empty;

use crate::client_info::{ClientInfo, key_str, record_kafka_error};
use crate::headers::extract;

/// Where a message's process span goes in the trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessParent {
    /// A child of the producer's span (the default): the trace continues
    /// through the broker. The span the consumer was polled under, if any,
    /// is linked.
    #[default]
    Producer,
    /// A new trace, linked to the producer's span: for consumers whose work
    /// should not extend the producer's trace (fan-out, long delays).
    NewTraceWithLink,
}

/// What the traced consumers share: client identity, propagator, options.
#[derive(Clone)]
struct Tracing {
    info: Arc<ClientInfo>,
    propagator: Option<Arc<dyn Propagator>>,
    parent: ProcessParent,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("info", &self.info)
            .field("parent", &self.parent)
            .finish_non_exhaustive()
    }
}

impl Tracing {
    fn new(config: &ClientConfig) -> Self {
        Tracing {
            info: Arc::new(ClientInfo::from_config(config)),
            propagator: None,
            parent: ProcessParent::default(),
        }
    }

    /// The context a message carries (none when its headers are absent or
    /// invalid: a new trace).
    fn message_context(&self, message: &BorrowedMessage<'_>) -> Context {
        match &self.propagator {
            Some(propagator) => extract(propagator.as_ref(), message.headers()),
            None => extract(tracewire::propagation::global().as_ref(), message.headers()),
        }
    }

    /// The `process {topic}` span of `message`.
    fn process_span(&self, message: &BorrowedMessage<'_>) -> Span {
        let ambient = tracewire::current_span_context();
        let cx = self.message_context(message);
        let topic = message.topic();
        // Every attribute is given at creation (one dispatch; the `%`
        // values are only formatted if the span records).
        let make = || {
            tracing::info_span!(
                "process",
                otel.name = %format_args!("process {topic}"),
                otel.kind = "consumer",
                otel.status_code = Empty,
                otel.status_message = Empty,
                messaging.system = "kafka",
                messaging.operation.name = "process",
                messaging.operation.type = "process",
                messaging.destination.name = topic,
                messaging.destination.partition.id = %message.partition(),
                messaging.kafka.offset = message.offset(),
                messaging.kafka.message.key = key_str(message.key()),
                messaging.kafka.message.tombstone = message.payload().is_none().then_some(true),
                messaging.consumer.group.name = self.info.group(),
                messaging.client.id = self.info.client_id(),
                server.address = self.info.server_address(),
                server.port = self.info.server_port(),
                error.type = Empty,
            )
        };
        let span = match self.parent {
            ProcessParent::Producer => with_remote_parent(&cx, make),
            ProcessParent::NewTraceWithLink => {
                let fresh = Context::new().with_baggage(cx.baggage().clone());
                let span = with_remote_parent(&fresh, make);
                if let Some(producer) = cx.span_context() {
                    span.add_link(producer);
                }
                span
            }
        };
        if let Some(ambient) = ambient {
            span.add_link(&ambient);
        }
        span
    }

    /// The `poll {topic}` CLIENT span of a batch, started before polling:
    /// named `poll` until a message tells the topic.
    fn poll_span(&self) -> Span {
        tracing::info_span!(
            "poll",
            otel.name = "poll",
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "poll",
            messaging.operation.type = "receive",
            messaging.destination.name = Empty,
            messaging.batch.message_count = Empty,
            messaging.consumer.group.name = self.info.group(),
            messaging.client.id = self.info.client_id(),
            server.address = self.info.server_address(),
            server.port = self.info.server_port(),
            error.type = Empty,
        )
    }

    /// Records what a poll received on its span and links each message's
    /// context to it, ends it, then returns the batch's `process {topic}`
    /// CONSUMER span (under the current span), which links them too.
    fn received_batch(&self, poll: Span, messages: &[BorrowedMessage<'_>]) -> Span {
        let topic = messages.first().map_or("", |m| m.topic());
        let mut producers = None;
        let link_producers = |span: &Span, producers: &mut Option<Vec<SpanContext>>| {
            if span.is_recording() {
                let producers = producers.get_or_insert_with(|| {
                    messages
                        .iter()
                        .filter_map(|m| self.message_context(m).span_context().cloned())
                        .collect()
                });
                for producer in producers.iter() {
                    span.add_link(producer);
                }
            }
        };
        poll.record("otel.name", format_args!("poll {topic}"));
        poll.record("messaging.destination.name", topic);
        poll.record("messaging.batch.message_count", messages.len());
        link_producers(&poll, &mut producers);
        // The poll span ends before the processing starts.
        drop(poll);
        let process = tracing::info_span!(
            "process",
            otel.name = %format_args!("process {topic}"),
            otel.kind = "consumer",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "process",
            messaging.operation.type = "process",
            messaging.destination.name = topic,
            messaging.batch.message_count = messages.len(),
            messaging.consumer.group.name = self.info.group(),
            messaging.client.id = self.info.client_id(),
            server.address = self.info.server_address(),
            server.port = self.info.server_port(),
            error.type = Empty,
        );
        link_producers(&process, &mut producers);
        process
    }

    /// Commits `message` in a `commit {topic}` CLIENT span.
    fn commit<X: ConsumerContext>(
        &self,
        consumer: &impl rdkafka::consumer::Consumer<X>,
        message: &BorrowedMessage<'_>,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        let span = tracing::info_span!(
            "commit",
            otel.name = %format_args!("commit {}", message.topic()),
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "commit",
            messaging.operation.type = "settle",
            messaging.destination.name = message.topic(),
            messaging.destination.partition.id = %message.partition(),
            messaging.kafka.offset = message.offset(),
            messaging.consumer.group.name = self.info.group(),
            error.type = Empty,
        );
        let result = span.in_scope(|| consumer.commit_message(message, mode));
        if let Err(error) = &result {
            record_kafka_error(&span, error);
        }
        result
    }
}

/// A received message and its `process {topic}` span.
///
/// The span started when the message was received and ends when this value
/// (and every clone of [`span`](Self::span)) is dropped, so it covers the
/// processing, not the wait for the next message. Run the processing inside
/// it: `message.span().in_scope(|| …)`, or for async code
/// `handle(&message).instrument(message.span().clone()).await`.
#[derive(Debug)]
pub struct TracedMessage<'a> {
    message: BorrowedMessage<'a>,
    span: Span,
}

impl<'a> TracedMessage<'a> {
    /// The process span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The message.
    pub fn message(&self) -> &BorrowedMessage<'a> {
        &self.message
    }

    /// Records that processing failed: status Error with `error.type`.
    pub fn record_error(&self, error: &(dyn std::error::Error + 'static), error_type: &str) {
        self.span.record("otel.status_code", "error");
        self.span.record("otel.status_message", error.to_string());
        self.span.record("error.type", error_type);
    }

    /// An owned copy of the message with the span, to move into a task.
    pub fn detach(&self) -> (OwnedMessage, Span) {
        (self.message.detach(), self.span.clone())
    }

    /// Splits into the message and the span.
    pub fn into_parts(self) -> (BorrowedMessage<'a>, Span) {
        (self.message, self.span)
    }
}

impl<'a> Deref for TracedMessage<'a> {
    type Target = BorrowedMessage<'a>;
    fn deref(&self) -> &Self::Target {
        &self.message
    }
}

/// Messages polled together by [`TracedBaseConsumer::poll_batch`], with the
/// `process {topic}` span for processing them.
///
/// The `poll {topic}` span of the poll that received them has already
/// ended; both link each message's producer context.
#[derive(Debug)]
pub struct TracedBatch<'a> {
    /// The batch's `process {topic}` CONSUMER span, under the span that was
    /// current when polling; process the batch inside it. It ends when this
    /// value and every clone of the span are dropped.
    pub span: Span,
    /// The messages, in the order received.
    pub messages: Vec<BorrowedMessage<'a>>,
}

/// A [`StreamConsumer`] whose messages come with their process spans.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use rdkafka::ClientConfig;
/// use rdkafka::consumer::Consumer as _;
/// use tracing::Instrument as _;
/// use tracewire_rdkafka::TracedStreamConsumer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092").set("group.id", "notifications");
/// let consumer: TracedStreamConsumer = TracedStreamConsumer::from_config(&config)?;
/// consumer.inner().subscribe(&["orders"])?;
/// loop {
///     let message = consumer.recv().await?;
///     async { tracing::info!("sending the e-mail") }
///         .instrument(message.span().clone())
///         .await;
/// }
/// # }
/// ```
pub struct TracedStreamConsumer<C = DefaultConsumerContext, R = DefaultRuntime>
where
    C: ConsumerContext + 'static,
{
    inner: StreamConsumer<C, R>,
    tracing: Tracing,
}

impl<C: ConsumerContext + 'static, R> std::fmt::Debug for TracedStreamConsumer<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedStreamConsumer")
            .field("tracing", &self.tracing)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime> TracedStreamConsumer<DefaultConsumerContext, R> {
    /// Creates the consumer from `config`.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn from_config(config: &ClientConfig) -> KafkaResult<Self> {
        Ok(Self::new(config.create()?, config))
    }
}

impl<C: ConsumerContext + 'static, R: AsyncRuntime> TracedStreamConsumer<C, R> {
    /// Wraps `consumer`; `config` is the configuration it was created with
    /// (for the group name, client id and server address).
    pub fn new(consumer: StreamConsumer<C, R>, config: &ClientConfig) -> Self {
        TracedStreamConsumer {
            inner: consumer,
            tracing: Tracing::new(config),
        }
    }

    /// Extracts with `propagator` instead of the global one.
    #[must_use]
    pub fn with_propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.tracing.propagator = Some(Arc::new(propagator));
        self
    }

    /// Where process spans go (default: children of the producer's span).
    #[must_use]
    pub fn with_process_parent(mut self, parent: ProcessParent) -> Self {
        self.tracing.parent = parent;
        self
    }

    /// The wrapped consumer (subscribe, assign, seek through it).
    pub fn inner(&self) -> &StreamConsumer<C, R> {
        &self.inner
    }

    /// Receives the next message with its process span.
    ///
    /// # Errors
    /// As [`StreamConsumer::recv`].
    pub async fn recv(&self) -> KafkaResult<TracedMessage<'_>> {
        let message = self.inner.recv().await?;
        let span = self.tracing.process_span(&message);
        Ok(TracedMessage { message, span })
    }

    /// The messages as a stream, each with its process span.
    pub fn stream(&self) -> impl Stream<Item = KafkaResult<TracedMessage<'_>>> + '_ {
        self.inner.stream().map(move |received| {
            received.map(|message| {
                let span = self.tracing.process_span(&message);
                TracedMessage { message, span }
            })
        })
    }

    /// Commits `message` in a `commit {topic}` span.
    ///
    /// # Errors
    /// As [`Consumer::commit_message`](rdkafka::consumer::Consumer::commit_message).
    pub fn commit_message(&self, message: &TracedMessage<'_>, mode: CommitMode) -> KafkaResult<()> {
        self.tracing.commit(&self.inner, &message.message, mode)
    }
}

/// A [`BaseConsumer`] (poll loop) whose messages come with their process
/// spans, and which can poll batches.
///
/// ```no_run
/// use std::time::Duration;
/// use rdkafka::ClientConfig;
/// use rdkafka::consumer::Consumer as _;
/// use tracewire_rdkafka::TracedBaseConsumer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092").set("group.id", "audit");
/// let consumer = TracedBaseConsumer::from_config(&config).unwrap();
/// consumer.inner().subscribe(&["orders"]).unwrap();
/// if let Some(Ok(message)) = consumer.poll(Duration::from_secs(1)) {
///     message.span().in_scope(|| tracing::info!("audited"));
/// }
/// ```
pub struct TracedBaseConsumer<C = DefaultConsumerContext>
where
    C: ConsumerContext + 'static,
{
    inner: BaseConsumer<C>,
    tracing: Tracing,
}

impl<C: ConsumerContext + 'static> std::fmt::Debug for TracedBaseConsumer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedBaseConsumer")
            .field("tracing", &self.tracing)
            .finish_non_exhaustive()
    }
}

impl TracedBaseConsumer<DefaultConsumerContext> {
    /// Creates the consumer from `config`.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn from_config(config: &ClientConfig) -> KafkaResult<Self> {
        Ok(Self::new(config.create()?, config))
    }
}

impl<C: ConsumerContext + 'static> TracedBaseConsumer<C> {
    /// Wraps `consumer`; `config` is the configuration it was created with.
    pub fn new(consumer: BaseConsumer<C>, config: &ClientConfig) -> Self {
        TracedBaseConsumer {
            inner: consumer,
            tracing: Tracing::new(config),
        }
    }

    /// Extracts with `propagator` instead of the global one.
    #[must_use]
    pub fn with_propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.tracing.propagator = Some(Arc::new(propagator));
        self
    }

    /// Where process spans go (default: children of the producer's span).
    #[must_use]
    pub fn with_process_parent(mut self, parent: ProcessParent) -> Self {
        self.tracing.parent = parent;
        self
    }

    /// The wrapped consumer.
    pub fn inner(&self) -> &BaseConsumer<C> {
        &self.inner
    }

    /// Polls for one message, with its process span.
    pub fn poll(&self, timeout: Duration) -> Option<KafkaResult<TracedMessage<'_>>> {
        let received = self.inner.poll(timeout)?;
        Some(received.map(|message| {
            let span = self.tracing.process_span(&message);
            TracedMessage { message, span }
        }))
    }

    /// Polls up to `max` messages within `timeout`, in a `poll {topic}`
    /// CLIENT span that covers the polling only: it starts before the first
    /// poll and ends before this returns, with the number of messages
    /// received (0 when none arrived; the span is then named `poll`) and a
    /// link to each message's producer context, or status Error. The batch
    /// comes with a `process {topic}` CONSUMER span for processing it, under
    /// the current span and linking each message's producer context too.
    /// `None` when no message arrived.
    ///
    /// # Errors
    /// The first consumer error, when it comes before any message.
    pub fn poll_batch(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Option<KafkaResult<TracedBatch<'_>>> {
        let poll = self.tracing.poll_span();
        let received = poll.in_scope(|| {
            let deadline = Instant::now() + timeout;
            let mut messages = Vec::new();
            while messages.len() < max {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.inner.poll(left) {
                    Some(Ok(message)) => messages.push(message),
                    Some(Err(e)) if messages.is_empty() => return Err(e),
                    Some(Err(_)) | None => break,
                }
            }
            Ok(messages)
        });
        let messages = match received {
            Ok(messages) => messages,
            Err(error) => {
                record_kafka_error(&poll, &error);
                return Some(Err(error));
            }
        };
        if messages.is_empty() {
            poll.record("messaging.batch.message_count", 0);
            return None;
        }
        let span = self.tracing.received_batch(poll, &messages);
        Some(Ok(TracedBatch { span, messages }))
    }

    /// Commits `message` in a `commit {topic}` span.
    ///
    /// # Errors
    /// As [`Consumer::commit_message`](rdkafka::consumer::Consumer::commit_message).
    pub fn commit_message(
        &self,
        message: &BorrowedMessage<'_>,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        self.tracing.commit(&self.inner, message, mode)
    }
}
