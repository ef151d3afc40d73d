//! In-process tail sampling: keep whole traces by what happened in them
//! (errors, latency, attributes), decided after they end.
//!
//! [`TailSamplingProcessor`] sits between the layer and the exporting
//! processor. It buffers the spans of each trace that ended in this process;
//! when the trace's local root has ended and `decision_wait` has passed
//! (late children), or when `trace_timeout` passes for a trace whose root
//! never ends here, it runs the [policies](Policy) and forwards or drops
//! the whole trace. Spans of a decided trace that end later follow the
//! decision. Memory is bounded: at most `max_traces` buffered traces (the
//! oldest is decided early, or dropped) and `max_spans_per_trace` spans per
//! trace.
//!
//! ```
//! use std::time::Duration;
//! use tracewire::tail::{Policy, StatusMatch, TailConfig, TailSamplingProcessor};
//! use tracewire::testing::InMemoryExporter;
//!
//! // Keep all errors, traces over 2 s, and 1% of the rest.
//! let policies = vec![
//!     Policy::StatusCode(vec![StatusMatch::Error]),
//!     Policy::Latency { threshold: Duration::from_secs(2), upper: None },
//!     Policy::Probabilistic(0.01),
//! ];
//! let exporter = InMemoryExporter::new();
//! let tail = TailSamplingProcessor::new(policies, TailConfig::default(), exporter.clone());
//! let layer = tracewire::TracewireLayer::new(tail);
//! # drop(layer);
//! ```
//!
//! Policies follow the OpenTelemetry Collector's `tail_sampling` processor:
//! `probabilistic` hashes the trace id as the Collector does (FNV-1a with
//! `hash_salt`, see [`Probabilistic`]), so a trace kept here is kept by a
//! Collector tier with the same settings, and [`Composite`] shares a
//! spans-per-second budget between sub-policies. Policy files in the
//! Collector's shape are read by [`policy_file_from_json`], which clamps
//! out-of-range values with a [`PolicyWarning`] and bounds the file's size,
//! policy count, nesting and strings.
//!
//! In-process tail sampling sees only the spans that end in this process.
//! It is enough when a trace's interesting parts live in one service; for
//! decisions over whole distributed traces, export everything to an
//! OpenTelemetry Collector and use its `tail_sampling` processor behind a
//! `loadbalancing` exporter (see the README).

mod composite;
mod config;
mod policy;
mod probabilistic;

pub use composite::{Composite, RateAllocation};
pub use config::{
    PolicyConfigError, PolicyFile, PolicyWarning, policies_from_json, policy_file_from_json,
};
pub use policy::{Policy, RateLimit, StatusMatch, Verdict};
pub use probabilistic::{
    DEFAULT_HASH_SALT, Probabilistic, collector_threshold, collector_trace_hash,
};

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::processor::{ProcessorError, SpanProcessor};
use crate::{SpanData, TraceId};

/// Tail sampling bounds and timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailConfig {
    /// How long after a trace's local root ends its late spans are awaited
    /// (default 1 s).
    pub decision_wait: Duration,
    /// How long a trace whose root never ends here is buffered (default 30 s).
    pub trace_timeout: Duration,
    /// Most traces buffered at once (default 10 000).
    pub max_traces: usize,
    /// Most spans buffered per trace; more are dropped and counted (default 1 000).
    pub max_spans_per_trace: usize,
    /// When `max_traces` is reached: decide the oldest trace now (`true`,
    /// the default) or drop it.
    pub decide_early: bool,
    /// How many decided trace ids are remembered for late spans (default 50 000).
    pub decision_cache: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            decision_wait: Duration::from_secs(1),
            trace_timeout: Duration::from_secs(30),
            max_traces: 10_000,
            max_spans_per_trace: 1_000,
            decide_early: true,
            decision_cache: 50_000,
        }
    }
}

/// Counters of the tail sampling stage.
#[derive(Debug, Default)]
pub struct TailStats {
    sampled: AtomicU64,
    not_sampled: AtomicU64,
    evicted: AtomicU64,
    dropped_spans: AtomicU64,
    late_spans: AtomicU64,
}

impl TailStats {
    /// Traces kept.
    pub fn sampled_traces(&self) -> u64 {
        self.sampled.load(Ordering::Relaxed)
    }
    /// Traces dropped by the policies.
    pub fn not_sampled_traces(&self) -> u64 {
        self.not_sampled.load(Ordering::Relaxed)
    }
    /// Traces pushed out by `max_traces` (decided early or dropped).
    pub fn evicted_traces(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
    /// Spans dropped by `max_spans_per_trace` or with an evicted trace.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped_spans.load(Ordering::Relaxed)
    }
    /// Spans that arrived after their trace was decided.
    pub fn late_spans(&self) -> u64 {
        self.late_spans.load(Ordering::Relaxed)
    }
}

struct Buffered {
    spans: Vec<SpanData>,
    first_seen: Instant,
    root_ended: Option<Instant>,
}

#[derive(Default)]
struct State {
    traces: HashMap<TraceId, Buffered>,
    /// Trace ids in arrival order (may hold ids already decided).
    order: VecDeque<TraceId>,
    decided: HashMap<TraceId, bool>,
    decided_order: VecDeque<TraceId>,
}

struct Inner {
    policies: Vec<Policy>,
    config: TailConfig,
    next: Box<dyn SpanProcessor>,
    state: Mutex<State>,
    stats: Arc<TailStats>,
    stop: AtomicBool,
    wake: Condvar,
}

/// The tail sampling pipeline stage. See the [module docs](self).
pub struct TailSamplingProcessor {
    inner: Arc<Inner>,
    worker: Mutex<Option<thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for TailSamplingProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailSamplingProcessor")
            .field("policies", &self.inner.policies)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl TailSamplingProcessor {
    /// A stage deciding with `policies` and forwarding kept traces to
    /// `next`, with a background thread that decides traces as they become
    /// ready.
    pub fn new(policies: Vec<Policy>, config: TailConfig, next: impl SpanProcessor) -> Self {
        let processor = Self::without_worker(policies, config, next);
        let inner = Arc::clone(&processor.inner);
        let tick =
            (config.decision_wait / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
        let spawned = thread::Builder::new()
            .name("tracewire-tail".into())
            .spawn(move || {
                let mut state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
                while !inner.stop.load(Ordering::Acquire) {
                    state = inner
                        .wake
                        .wait_timeout(state, tick)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    drop(state);
                    inner.decide_ready(Instant::now(), false);
                    state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
                }
            });
        if let Ok(handle) = spawned {
            *processor
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(handle);
        }
        processor
    }

    /// A stage without its own thread: traces are decided only when
    /// [`decide_ready`](Self::decide_ready) is called (tests drive it with a
    /// synthetic clock) and on flush or shutdown.
    pub fn without_worker(
        policies: Vec<Policy>,
        config: TailConfig,
        next: impl SpanProcessor,
    ) -> Self {
        TailSamplingProcessor {
            inner: Arc::new(Inner {
                policies,
                config,
                next: Box::new(next),
                state: Mutex::new(State::default()),
                stats: Arc::new(TailStats::default()),
                stop: AtomicBool::new(false),
                wake: Condvar::new(),
            }),
            worker: Mutex::new(None),
        }
    }

    /// The stage's counters.
    pub fn stats(&self) -> Arc<TailStats> {
        Arc::clone(&self.inner.stats)
    }

    /// How many traces are buffered.
    pub fn buffered_traces(&self) -> usize {
        self.inner.lock().traces.len()
    }

    /// How many spans are buffered.
    pub fn buffered_spans(&self) -> usize {
        self.inner
            .lock()
            .traces
            .values()
            .map(|t| t.spans.len())
            .sum()
    }

    /// Decides every trace that is ready at `now`.
    pub fn decide_ready(&self, now: Instant) {
        self.inner.decide_ready(now, false);
    }

    /// Receives a finished span as of `now` (for synthetic clocks; the
    /// [`SpanProcessor`] entry point uses the real clock).
    pub fn on_end_at(&self, span: SpanData, now: Instant) {
        self.inner.on_end(span, now);
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_end(&self, span: SpanData, now: Instant) {
        let trace_id = span.span_context.trace_id();
        let is_root = span.is_local_root();
        let mut evicted = None;
        {
            let mut state = self.lock();
            if let Some(&keep) = state.decided.get(&trace_id) {
                drop(state);
                self.stats.late_spans.fetch_add(1, Ordering::Relaxed);
                if keep {
                    self.next.on_end(span);
                }
                return;
            }
            // One hash of the trace id for the lookup and the insertion.
            let State { traces, order, .. } = &mut *state;
            let mut added = false;
            let trace = traces.entry(trace_id).or_insert_with(|| {
                added = true;
                order.push_back(trace_id);
                Buffered {
                    spans: Vec::new(),
                    first_seen: now,
                    root_ended: None,
                }
            });
            if is_root {
                trace.root_ended = Some(now);
            }
            if trace.spans.len() < self.config.max_spans_per_trace {
                trace.spans.push(span);
            } else {
                self.stats.dropped_spans.fetch_add(1, Ordering::Relaxed);
            }
            // Over the bound: the oldest trace goes (never the one just
            // added, which is the newest).
            if added && state.traces.len() > self.config.max_traces.max(1) {
                evicted = Self::pop_oldest(&mut state);
            }
        }
        if let Some((id, trace)) = evicted {
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
            if self.config.decide_early {
                self.finish(id, trace.spans, now);
            } else {
                self.stats
                    .dropped_spans
                    .fetch_add(trace.spans.len() as u64, Ordering::Relaxed);
                self.remember(id, false);
            }
        }
    }

    /// Removes the oldest buffered trace.
    fn pop_oldest(state: &mut State) -> Option<(TraceId, Buffered)> {
        while let Some(id) = state.order.pop_front() {
            if let Some(trace) = state.traces.remove(&id) {
                return Some((id, trace));
            }
        }
        None
    }

    fn remember(&self, id: TraceId, keep: bool) {
        let mut state = self.lock();
        if state.decided.insert(id, keep).is_none() {
            state.decided_order.push_back(id);
        }
        while state.decided_order.len() > self.config.decision_cache {
            if let Some(old) = state.decided_order.pop_front() {
                state.decided.remove(&old);
            }
        }
    }

    /// Runs the policies on a whole trace and forwards or drops it.
    fn finish(&self, id: TraceId, spans: Vec<SpanData>, now: Instant) {
        let keep = policy::decide(&self.policies, id, &spans, now);
        self.remember(id, keep);
        if keep {
            self.stats.sampled.fetch_add(1, Ordering::Relaxed);
            for span in spans {
                self.next.on_end(span);
            }
        } else {
            self.stats.not_sampled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Decides the traces ready at `now` (all of them when `all`).
    fn decide_ready(&self, now: Instant, all: bool) {
        let ready: Vec<(TraceId, Buffered)> = {
            let mut state = self.lock();
            let ids: Vec<TraceId> = state
                .traces
                .iter()
                .filter(|(_, t)| {
                    all || t.root_ended.is_some_and(|r| {
                        now.saturating_duration_since(r) >= self.config.decision_wait
                    }) || now.saturating_duration_since(t.first_seen) >= self.config.trace_timeout
                })
                .map(|(id, _)| *id)
                .collect();
            let taken = ids
                .into_iter()
                .filter_map(|id| state.traces.remove(&id).map(|t| (id, t)))
                .collect();
            let live = &state.traces;
            let order: VecDeque<TraceId> = state
                .order
                .iter()
                .copied()
                .filter(|id| live.contains_key(id))
                .collect();
            state.order = order;
            taken
        };
        for (id, trace) in ready {
            self.finish(id, trace.spans, now);
        }
    }

    fn stop_worker(&self, worker: &Mutex<Option<thread::JoinHandle<()>>>) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_all();
        if let Some(handle) = worker.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = handle.join();
        }
    }
}

impl SpanProcessor for TailSamplingProcessor {
    fn on_end(&self, span: SpanData) {
        self.inner.on_end(span, Instant::now());
    }

    /// Decides every buffered trace now, then flushes the next stage.
    fn force_flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        self.inner.decide_ready(Instant::now(), true);
        self.inner.next.force_flush(timeout)
    }

    /// Decides every buffered trace, stops the worker, shuts the next stage
    /// down.
    fn shutdown(&self, timeout: Duration) -> Result<(), ProcessorError> {
        self.inner.stop_worker(&self.worker);
        self.inner.decide_ready(Instant::now(), true);
        self.inner.next.shutdown(timeout)
    }
}

/// Decides what is still buffered, so no trace is lost silently.
impl Drop for TailSamplingProcessor {
    fn drop(&mut self) {
        self.inner.stop_worker(&self.worker);
        self.inner.decide_ready(Instant::now(), true);
    }
}

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod tests;
