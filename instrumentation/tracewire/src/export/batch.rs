//! The batch span processor: a bounded queue in front of a background
//! exporting thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use super::{ExportError, SpanExporter};
use crate::SpanData;
use crate::processor::{ProcessorError, SpanProcessor};
use crate::sampling::ConfigWarning;

/// Batch settings; the defaults are OpenTelemetry's (`OTEL_BSP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most spans waiting to be exported; more are dropped
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048).
    pub max_queue_size: usize,
    /// Most spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512).
    pub max_export_batch_size: usize,
    /// Longest wait before a partial batch is exported
    /// (`OTEL_BSP_SCHEDULE_DELAY`, 5 s).
    pub scheduled_delay: Duration,
    /// Longest one export may take (`OTEL_BSP_EXPORT_TIMEOUT`, 30 s).
    pub export_timeout: Duration,
    /// Shortest interval between two "spans dropped" warnings (10 s).
    pub warning_interval: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30000),
            warning_interval: Duration::from_secs(10),
        }
    }
}

impl BatchConfig {
    /// The largest queue accepted (`OTEL_BSP_MAX_QUEUE_SIZE`): the queue is
    /// allocated up front, so a larger value is cut to this one.
    pub const MAX_QUEUE_SIZE: usize = 65_536;
    /// The range of `OTEL_BSP_SCHEDULE_DELAY` (a shorter delay would keep
    /// the export thread busy; a longer one is cut).
    pub const SCHEDULE_DELAY_RANGE: (Duration, Duration) =
        (Duration::from_millis(1), Duration::from_secs(3600));
    /// The range of `OTEL_BSP_EXPORT_TIMEOUT` (0 would fail every export).
    pub const EXPORT_TIMEOUT_RANGE: (Duration, Duration) =
        (Duration::from_millis(1), Duration::from_secs(3600));

    /// The settings from the `OTEL_BSP_*` variables, read through `var`
    /// (pass `|name| std::env::var(name).ok()`). A value that is not a
    /// whole number, or is below the smallest value accepted (0 or
    /// negative), gives a warning and the default; one above the largest
    /// gives a warning and the largest (queue and batch size
    /// [`MAX_QUEUE_SIZE`](Self::MAX_QUEUE_SIZE), delays and timeouts 1
    /// hour). A batch size over the queue size is cut to the queue size.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracewire::export::BatchConfig;
    ///
    /// let (config, warnings) = BatchConfig::from_otel(|name| match name {
    ///     "OTEL_BSP_SCHEDULE_DELAY" => Some("250".into()),
    ///     "OTEL_BSP_MAX_QUEUE_SIZE" => Some("lots".into()),
    ///     "OTEL_BSP_EXPORT_TIMEOUT" => Some("0".into()),
    ///     _ => None,
    /// });
    /// assert_eq!(config.scheduled_delay, Duration::from_millis(250));
    /// assert_eq!(config.max_queue_size, 2048);
    /// assert_eq!(config.export_timeout, Duration::from_secs(30));
    /// assert_eq!(warnings.len(), 2);
    /// ```
    pub fn from_otel(var: impl Fn(&str) -> Option<String>) -> (Self, Vec<ConfigWarning>) {
        let mut config = BatchConfig::default();
        let mut warnings = Vec::new();
        // A whole number in `min..=max`; above it, `max` with a warning;
        // anything else is a warning and `None` (the default).
        let mut read = |name: &'static str, min: u64, max: u64| -> Option<u64> {
            let raw = var(name)?;
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            let (value, reason) = match raw.parse::<i128>() {
                Ok(v) if v < i128::from(min) => (None, "too small; using the default"),
                Ok(v) if v > i128::from(max) => {
                    (Some(max), "above the largest value accepted; using that")
                }
                Ok(v) => return u64::try_from(v).ok(),
                Err(_) if raw.bytes().all(|b| b.is_ascii_digit()) => {
                    (Some(max), "above the largest value accepted; using that")
                }
                Err(_) => (None, "expected a whole number; using the default"),
            };
            warnings.push(ConfigWarning {
                variable: name,
                value: raw.chars().take(64).collect(),
                reason,
            });
            value
        };
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (lo, hi) = Self::SCHEDULE_DELAY_RANGE;
        if let Some(v) = read("OTEL_BSP_SCHEDULE_DELAY", millis(lo), millis(hi)) {
            config.scheduled_delay = Duration::from_millis(v);
        }
        let (lo, hi) = Self::EXPORT_TIMEOUT_RANGE;
        if let Some(v) = read("OTEL_BSP_EXPORT_TIMEOUT", millis(lo), millis(hi)) {
            config.export_timeout = Duration::from_millis(v);
        }
        let max_queue = Self::MAX_QUEUE_SIZE as u64;
        if let Some(v) = read("OTEL_BSP_MAX_QUEUE_SIZE", 1, max_queue) {
            config.max_queue_size = usize::try_from(v).unwrap_or(Self::MAX_QUEUE_SIZE);
        }
        if let Some(v) = read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, max_queue) {
            config.max_export_batch_size = usize::try_from(v).unwrap_or(Self::MAX_QUEUE_SIZE);
        }
        (config.clamped(), warnings)
    }

    /// The settings brought into range, as the processor uses them: the
    /// queue size in 1 to [`MAX_QUEUE_SIZE`](Self::MAX_QUEUE_SIZE), the
    /// batch size in 1 to the queue size, the delay and timeout in their
    /// ranges.
    pub fn clamped(self) -> Self {
        let max_queue_size = self.max_queue_size.clamp(1, Self::MAX_QUEUE_SIZE);
        BatchConfig {
            max_queue_size,
            max_export_batch_size: self.max_export_batch_size.clamp(1, max_queue_size),
            scheduled_delay: self
                .scheduled_delay
                .clamp(Self::SCHEDULE_DELAY_RANGE.0, Self::SCHEDULE_DELAY_RANGE.1),
            export_timeout: self
                .export_timeout
                .clamp(Self::EXPORT_TIMEOUT_RANGE.0, Self::EXPORT_TIMEOUT_RANGE.1),
            warning_interval: self.warning_interval,
        }
    }
}

/// Counters of what happened to the spans given to a processor.
#[derive(Debug, Default)]
pub struct PipelineStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Spans of the export under way.
    in_flight: AtomicU64,
    /// The queue, to tell how many spans wait in it.
    queue: Option<Receiver<SpanData>>,
    /// Times the worker woke up (for tests of the wake-up policy).
    wakeups: AtomicU64,
}

impl PipelineStats {
    /// Spans the exporter accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }
    /// Spans dropped because the queue was full or the processor was shut
    /// down.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Spans lost because their export failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    /// Spans accepted but not yet exported, failed or dropped: waiting in
    /// the queue or in an export under way. Read after a shutdown that
    /// timed out, these are the spans that were never delivered.
    pub fn pending(&self) -> u64 {
        let queued = self.queue.as_ref().map_or(0, Receiver::len) as u64;
        queued + self.in_flight.load(Ordering::Relaxed)
    }
}

enum Control {
    /// A full batch is queued.
    BatchReady,
    Flush(Sender<Result<(), ExportError>>),
    Shutdown(Sender<Result<(), ExportError>>),
}

/// Exports spans in batches from a background thread.
///
/// `on_end` never blocks: it offers the span to a bounded queue and, when the
/// queue is full, drops it and counts it (see [`stats`](Self::stats)); a
/// warning is logged at most once per [`BatchConfig::warning_interval`]. The
/// worker wakes when a batch is full, when the schedule delay ends, and on
/// flush and shutdown, never for a single span (a wake-up costs the
/// application a context switch). The worker is a plain thread with its own
/// current-thread tokio runtime, so the processor works with or without a
/// runtime in the application (a current-thread one included). [`force_flush`](SpanProcessor::force_flush)
/// and [`shutdown`](SpanProcessor::shutdown) deliver what is queued and
/// return by their timeout even when the receiver is unreachable.
///
/// ```
/// use std::time::Duration;
/// use tracewire::export::{BatchConfig, BatchSpanProcessor, ExportFuture, SpanExporter};
/// use tracewire::processor::SpanProcessor;
/// use tracewire::SpanData;
///
/// #[derive(Debug)]
/// struct Discard;
/// impl SpanExporter for Discard {
///     fn export(&mut self, _: Vec<SpanData>) -> ExportFuture<'_> {
///         Box::pin(async { Ok(()) })
///     }
/// }
///
/// let processor = BatchSpanProcessor::new(Discard, BatchConfig::default());
/// processor.shutdown(Duration::from_secs(1)).unwrap();
/// ```
#[derive(Debug)]
pub struct BatchSpanProcessor {
    spans: Sender<SpanData>,
    control: Sender<Control>,
    stats: Arc<PipelineStats>,
    is_shutdown: AtomicBool,
    batch_size: usize,
    /// Set when a [`Control::BatchReady`] is on its way, cleared by the
    /// worker when it wakes: one wake-up per full batch, not per span.
    wake_sent: Arc<AtomicBool>,
}

impl BatchSpanProcessor {
    /// Starts the worker thread exporting through `exporter`, with the
    /// settings [`clamped`](BatchConfig::clamped).
    pub fn new(exporter: impl SpanExporter, config: BatchConfig) -> Self {
        let config = config.clamped();
        let (spans, span_rx) = bounded(config.max_queue_size);
        let (control, control_rx) = bounded(16);
        let stats = Arc::new(PipelineStats {
            queue: Some(span_rx.clone()),
            ..PipelineStats::default()
        });
        let wake_sent = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            wake_sent: Arc::clone(&wake_sent),
            exporter: Box::new(exporter),
            config,
            spans: span_rx,
            control: control_rx,
            stats: Arc::clone(&stats),
            batch: Vec::with_capacity(config.max_export_batch_size),
            warned_drops: 0,
            last_warning: None,
            unreported_failures: 0,
            last_failure_warning: None,
        };
        let spawned = thread::Builder::new()
            .name("tracewire-export".into())
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            tracing::warn!(target: "tracewire::export", error = %e, "cannot start the export thread; spans will be dropped");
        }
        BatchSpanProcessor {
            spans,
            control,
            stats,
            is_shutdown: AtomicBool::new(false),
            batch_size: config.max_export_batch_size,
            wake_sent,
        }
    }

    /// The counters of exported, dropped and failed spans.
    pub fn stats(&self) -> Arc<PipelineStats> {
        Arc::clone(&self.stats)
    }

    /// Tells the worker a batch is full, unless it has been told already.
    fn wake_worker(&self) {
        if self.wake_sent.load(Ordering::Relaxed) || self.wake_sent.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.control.try_send(Control::BatchReady).is_err() {
            // The control queue is full of requests: the worker drains the
            // queue for them anyway; let a later span try again.
            self.wake_sent.store(false, Ordering::Release);
        }
    }

    fn request(
        &self,
        make: impl FnOnce(Sender<Result<(), ExportError>>) -> Control,
        timeout: Duration,
    ) -> Result<(), ProcessorError> {
        let deadline = Instant::now() + timeout;
        let (reply, reply_rx) = bounded(1);
        self.control
            .send_timeout(make(reply), timeout)
            .map_err(|_| ProcessorError::Timeout(timeout))?;
        match reply_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ProcessorError::Export(e.to_string())),
            Err(RecvTimeoutError::Timeout) => Err(ProcessorError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(ProcessorError::AlreadyShutdown),
        }
    }
}

impl SpanProcessor for BatchSpanProcessor {
    fn on_end(&self, span: SpanData) {
        // After shutdown the worker may still hold the queue open for a
        // moment; a span sent then would never be exported nor counted.
        if self.is_shutdown.load(Ordering::Acquire) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.spans.try_send(span) {
            // The worker sleeps until a batch is full (or the schedule delay
            // ends): waking it for every span would cost a context switch
            // per span.
            Ok(()) if self.spans.len() >= self.batch_size => self.wake_worker(),
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn force_flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        if self.is_shutdown.load(Ordering::Acquire) {
            return Err(ProcessorError::AlreadyShutdown);
        }
        self.request(Control::Flush, timeout)
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), ProcessorError> {
        if self.is_shutdown.swap(true, Ordering::AcqRel) {
            return Err(ProcessorError::AlreadyShutdown);
        }
        self.request(Control::Shutdown, timeout)
    }
}

impl Drop for BatchSpanProcessor {
    fn drop(&mut self) {
        if !self.is_shutdown.load(Ordering::Acquire) {
            let _ = self.shutdown(Duration::from_secs(5));
        }
    }
}

struct Worker {
    wake_sent: Arc<AtomicBool>,
    exporter: Box<dyn SpanExporter>,
    config: BatchConfig,
    spans: Receiver<SpanData>,
    control: Receiver<Control>,
    stats: Arc<PipelineStats>,
    batch: Vec<SpanData>,
    warned_drops: u64,
    last_warning: Option<Instant>,
    /// Spans failed since the last failure warning.
    unreported_failures: u64,
    last_failure_warning: Option<Instant>,
}

impl Worker {
    fn run(mut self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(target: "tracewire::export", error = %e, "cannot start the export runtime; spans will be dropped");
                return;
            }
        };
        // The worker waits for requests only; spans are taken from their
        // queue when a batch is full (`BatchReady`), when the schedule
        // delay ends (a partial batch), and on flush and shutdown.
        let mut due = Instant::now() + self.config.scheduled_delay;
        loop {
            let timeout = due.saturating_duration_since(Instant::now());
            let message = self.control.recv_timeout(timeout);
            self.wake_sent.store(false, Ordering::Release);
            self.stats.wakeups.fetch_add(1, Ordering::Relaxed);
            match message {
                Ok(Control::BatchReady) => {
                    // Failures are counted and logged inside.
                    let _ = self.export_full_batches(&runtime);
                }
                Ok(Control::Flush(reply)) => {
                    let result = self.drain(&runtime);
                    let flushed = runtime.block_on(self.exporter.force_flush());
                    let _ = reply.send(result.and(flushed));
                }
                Ok(Control::Shutdown(reply)) => {
                    let result = self.drain(&runtime);
                    let closed = runtime.block_on(self.exporter.shutdown());
                    let _ = reply.send(result.and(closed));
                    self.count_left_behind();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.drain(&runtime);
                    due = Instant::now() + self.config.scheduled_delay;
                }
                // The processor was dropped without a shutdown.
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.drain(&runtime);
                    let _ = runtime.block_on(self.exporter.shutdown());
                    return;
                }
            }
            self.warn_about_drops();
        }
    }

    /// Exports full batches while the queue holds one.
    fn export_full_batches(
        &mut self,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<(), ExportError> {
        let mut result = Ok(());
        while self.spans.len() >= self.config.max_export_batch_size {
            self.fill_batch();
            if let Err(e) = self.export(runtime) {
                result = Err(e);
            }
        }
        result
    }

    /// Moves queued spans into the batch, up to the batch size.
    fn fill_batch(&mut self) {
        while self.batch.len() < self.config.max_export_batch_size {
            match self.spans.try_recv() {
                Ok(span) => self.batch.push(span),
                Err(_) => break,
            }
        }
    }

    /// Exports everything queued, batch by batch.
    fn drain(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), ExportError> {
        let mut result = Ok(());
        loop {
            self.fill_batch();
            if self.batch.is_empty() {
                return result;
            }
            if let Err(e) = self.export(runtime) {
                result = Err(e);
            }
        }
    }

    /// Exports the current batch within the export timeout.
    fn export(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), ExportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(
            &mut self.batch,
            Vec::with_capacity(self.config.max_export_batch_size),
        );
        let count = batch.len() as u64;
        self.stats.in_flight.store(count, Ordering::Relaxed);
        let timeout = self.config.export_timeout;
        let exporter = &mut self.exporter;
        let result = runtime.block_on(async move {
            match tokio::time::timeout(timeout, exporter.export(batch)).await {
                Ok(result) => result,
                Err(_) => Err(ExportError::Timeout),
            }
        });
        self.stats.in_flight.store(0, Ordering::Relaxed);
        match &result {
            Ok(()) => {
                self.stats.exported.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.failed.fetch_add(count, Ordering::Relaxed);
                self.unreported_failures += count;
                let now = Instant::now();
                let quiet = self
                    .last_failure_warning
                    .is_some_and(|t| now.duration_since(t) < self.config.warning_interval);
                if !quiet {
                    tracing::warn!(
                        target: "tracewire::export",
                        error = %e,
                        failed = self.unreported_failures,
                        total_failed = self.stats.failed(),
                        "span export failed; the spans are dropped"
                    );
                    self.unreported_failures = 0;
                    self.last_failure_warning = Some(now);
                }
            }
        }
        result
    }

    /// Spans still queued after shutdown are counted as dropped.
    fn count_left_behind(&self) {
        let left = self.spans.try_iter().count() as u64;
        self.stats.dropped.fetch_add(left, Ordering::Relaxed);
    }

    /// Logs newly dropped spans, at most once per warning interval.
    fn warn_about_drops(&mut self) {
        let dropped = self.stats.dropped();
        if dropped == self.warned_drops {
            return;
        }
        let now = Instant::now();
        if self
            .last_warning
            .is_some_and(|t| now.duration_since(t) < self.config.warning_interval)
        {
            return;
        }
        tracing::warn!(
            target: "tracewire::export",
            dropped = dropped - self.warned_drops,
            total_dropped = dropped,
            "span queue full: spans dropped (raise OTEL_BSP_MAX_QUEUE_SIZE or check the exporter)"
        );
        self.warned_drops = dropped;
        self.last_warning = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        InstrumentationScope, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId,
        TraceState,
    };
    use std::sync::Mutex;
    use std::time::SystemTime;

    fn span(n: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_u128(1),
                SpanId::from_u64(n + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_is_remote: false,
            name: "s".into(),
            kind: SpanKind::Internal,
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status: Status::Unset,
            scope: InstrumentationScope::default(),
        }
    }

    /// Records batch sizes; can be made to hang or fail.
    #[derive(Debug, Clone, Default)]
    struct Probe {
        batches: Arc<Mutex<Vec<usize>>>,
        hang: Arc<AtomicBool>,
        fail: Arc<AtomicBool>,
    }

    impl SpanExporter for Probe {
        fn export(&mut self, batch: Vec<SpanData>) -> super::super::ExportFuture<'_> {
            let (hang, fail) = (
                self.hang.load(Ordering::SeqCst),
                self.fail.load(Ordering::SeqCst),
            );
            self.batches.lock().unwrap().push(batch.len());
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                if fail {
                    Err(ExportError::Rejected("400".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn config(queue: usize, batch: usize, delay_ms: u64) -> BatchConfig {
        BatchConfig {
            max_queue_size: queue,
            max_export_batch_size: batch,
            scheduled_delay: Duration::from_millis(delay_ms),
            export_timeout: Duration::from_millis(200),
            warning_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn full_batches_are_exported_without_waiting_for_the_delay() {
        let probe = Probe::default();
        let p = BatchSpanProcessor::new(probe.clone(), config(100, 10, 60_000));
        for i in 0..25 {
            p.on_end(span(i));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while probe.batches.lock().unwrap().len() < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(probe.batches.lock().unwrap()[..2], [10, 10]);
        p.force_flush(Duration::from_secs(5)).unwrap();
        assert_eq!(*probe.batches.lock().unwrap(), [10, 10, 5]);
        assert_eq!(p.stats().exported(), 25);
    }

    #[test]
    fn the_worker_wakes_once_per_full_batch_not_per_span() {
        let probe = Probe::default();
        let p = BatchSpanProcessor::new(probe.clone(), config(2048, 100, 60_000));
        for i in 0..1000 {
            p.on_end(span(i));
            if i % 10 == 0 {
                // Give the worker every chance to be woken for a span.
                thread::yield_now();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.stats().exported() < 1000 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(p.stats().exported(), 1000, "ten full batches, no delay");
        assert!(probe.batches.lock().unwrap().iter().all(|&n| n == 100));
        let wakeups = p.stats.wakeups.load(Ordering::Relaxed);
        assert!(wakeups <= 10, "{wakeups} wake-ups for 10 batches");
    }

    #[test]
    fn spans_still_being_exported_at_a_timed_out_shutdown_are_pending() {
        let probe = Probe::default();
        probe.hang.store(true, Ordering::SeqCst);
        let mut cfg = config(100, 10, 60_000);
        cfg.export_timeout = Duration::from_secs(60);
        let p = BatchSpanProcessor::new(probe, cfg);
        for i in 0..25 {
            p.on_end(span(i));
        }
        assert!(
            p.shutdown(Duration::from_millis(200)).is_err(),
            "the export hangs"
        );
        let stats = p.stats();
        assert_eq!(
            stats.exported() + stats.failed() + stats.dropped() + stats.pending(),
            25,
            "every span is accounted for"
        );
        assert!(stats.pending() >= 10, "the hanging batch is pending");
    }

    #[test]
    fn partial_batches_go_out_after_the_schedule_delay() {
        let probe = Probe::default();
        let p = BatchSpanProcessor::new(probe.clone(), config(100, 50, 20));
        p.on_end(span(0));
        let deadline = Instant::now() + Duration::from_secs(5);
        while probe.batches.lock().unwrap().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(*probe.batches.lock().unwrap(), [1]);
    }

    #[test]
    fn a_stuck_exporter_never_blocks_on_end_and_the_queue_stays_bounded() {
        let probe = Probe::default();
        probe.hang.store(true, Ordering::SeqCst);
        let mut cfg = config(64, 8, 1);
        cfg.export_timeout = Duration::from_secs(60);
        let p = BatchSpanProcessor::new(probe, cfg);
        let started = Instant::now();
        for i in 0..10_000 {
            p.on_end(span(i));
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // One batch is stuck in export, at most 64 wait in the queue.
        assert!(
            p.stats().dropped() >= 10_000 - 64 - 8,
            "{}",
            p.stats().dropped()
        );
        let started = Instant::now();
        assert_eq!(
            p.shutdown(Duration::from_millis(300)),
            Err(ProcessorError::Timeout(Duration::from_millis(300)))
        );
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn export_timeout_and_failures_are_counted() {
        let probe = Probe::default();
        probe.fail.store(true, Ordering::SeqCst);
        let p = BatchSpanProcessor::new(probe.clone(), config(100, 10, 60_000));
        for i in 0..3 {
            p.on_end(span(i));
        }
        assert!(matches!(
            p.force_flush(Duration::from_secs(5)),
            Err(ProcessorError::Export(_))
        ));
        assert_eq!((p.stats().exported(), p.stats().failed()), (0, 3));

        probe.fail.store(false, Ordering::SeqCst);
        probe.hang.store(true, Ordering::SeqCst);
        p.on_end(span(9));
        // The 200 ms export timeout cuts the hanging export off.
        assert!(matches!(
            p.force_flush(Duration::from_secs(5)),
            Err(ProcessorError::Export(_))
        ));
        assert_eq!(p.stats().failed(), 4);
    }

    #[test]
    fn shutdown_delivers_the_queue_and_later_spans_are_dropped() {
        let probe = Probe::default();
        let p = BatchSpanProcessor::new(probe.clone(), config(100, 50, 60_000));
        for i in 0..7 {
            p.on_end(span(i));
        }
        p.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(*probe.batches.lock().unwrap(), [7]);
        p.on_end(span(99));
        assert_eq!(p.stats().dropped(), 1);
        assert_eq!(
            p.shutdown(Duration::from_secs(1)),
            Err(ProcessorError::AlreadyShutdown)
        );
    }

    #[test]
    fn works_inside_a_current_thread_runtime() {
        let probe = Probe::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let p = BatchSpanProcessor::new(probe.clone(), config(100, 50, 60_000));
            p.on_end(span(1));
            p.shutdown(Duration::from_secs(5)).unwrap();
        });
        assert_eq!(*probe.batches.lock().unwrap(), [1]);
    }

    #[test]
    fn bsp_variables() {
        let (c, w) = BatchConfig::from_otel(|name| {
            Some(
                match name {
                    "OTEL_BSP_SCHEDULE_DELAY" => "100",
                    "OTEL_BSP_EXPORT_TIMEOUT" => "2000",
                    "OTEL_BSP_MAX_QUEUE_SIZE" => "10",
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" => "512",
                    _ => return None,
                }
                .to_owned(),
            )
        });
        assert!(w.is_empty());
        assert_eq!(c.scheduled_delay, Duration::from_millis(100));
        assert_eq!(c.export_timeout, Duration::from_secs(2));
        assert_eq!((c.max_queue_size, c.max_export_batch_size), (10, 10));

        let (c, w) = BatchConfig::from_otel(|name| match name {
            "OTEL_BSP_MAX_QUEUE_SIZE" => Some("0".into()),
            "OTEL_BSP_SCHEDULE_DELAY" => Some("-5".into()),
            "OTEL_BSP_EXPORT_TIMEOUT" => Some("".into()),
            _ => None,
        });
        assert_eq!(w.len(), 2);
        assert_eq!(c, BatchConfig::default());
    }

    #[test]
    fn every_bad_value_gives_a_warning_and_a_usable_setting() {
        const VARS: [&str; 4] = [
            "OTEL_BSP_SCHEDULE_DELAY",
            "OTEL_BSP_EXPORT_TIMEOUT",
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        ];
        let huge = "9".repeat(400);
        let bad = [
            "0",
            "-1",
            "-99999999999999999999999999",
            "18446744073709551616",
            "9223372036854775808",
            huge.as_str(),
            "1e300",
            "NaN",
            "ten",
            "\u{0}",
        ];
        for variable in VARS {
            for value in bad {
                let (c, w) =
                    BatchConfig::from_otel(|name| (name == variable).then(|| value.into()));
                assert_eq!(w.len(), 1, "{variable}={value:?}");
                assert_eq!(w[0].variable, variable);
                assert!(w[0].value.len() <= 64, "the warning quotes a bounded value");
                assert_eq!(
                    c,
                    c.clamped(),
                    "{variable}={value:?} gives a setting in range"
                );
                assert!(c.max_queue_size <= BatchConfig::MAX_QUEUE_SIZE);
                assert!(c.scheduled_delay >= Duration::from_millis(1));
                assert!(c.export_timeout >= Duration::from_millis(1));
            }
        }
        let (c, _) = BatchConfig::from_otel(|name| {
            (name == "OTEL_BSP_MAX_QUEUE_SIZE").then(|| "18446744073709551616".into())
        });
        assert_eq!(
            c.max_queue_size,
            BatchConfig::MAX_QUEUE_SIZE,
            "huge is cut to the largest"
        );
        let (c, _) =
            BatchConfig::from_otel(|name| (name == "OTEL_BSP_SCHEDULE_DELAY").then(|| "0".into()));
        assert_eq!(
            c.scheduled_delay,
            BatchConfig::default().scheduled_delay,
            "0 never spins"
        );
    }
}
