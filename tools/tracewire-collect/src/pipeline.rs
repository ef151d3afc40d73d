//! The processors between the receiver and the store.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value as Json;
use tracewire::tail::{Policy, Verdict};
use tracewire::{
    InstrumentationScope, KeyValue, SpanContext, SpanData, SpanId, SpanKind, Status, TraceFlags,
    TraceId, TraceState, Value,
};

use crate::config::Pipeline;
use crate::filter::SpanFilter;
use crate::otlp::Received;
use crate::store::SpanRow;

/// One processor's settings, as read from the configuration.
#[derive(Clone, Debug)]
pub(crate) enum ProcessorConfig {
    /// `batch`: batches are written as received; its settings are accepted.
    Batch,
    /// `filter`.
    Filter(Arc<SpanFilter>),
    /// `tail_sampling`.
    TailSampling(TailSamplingConfig),
}

/// `tail_sampling`'s settings.
#[derive(Clone, Debug)]
pub(crate) struct TailSamplingConfig {
    pub(crate) decision_wait: Duration,
    pub(crate) num_traces: usize,
    pub(crate) max_spans_per_trace: usize,
    pub(crate) decision_cache: usize,
    pub(crate) policies: Arc<Vec<Policy>>,
}

/// What the processors dropped.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dropped {
    pub(crate) filtered: u64,
    pub(crate) not_sampled: u64,
}

enum Stage {
    Pass,
    Filter(Arc<SpanFilter>),
    Tail(Box<TailBuffer>),
}

/// The running processors.
pub(crate) struct Processors {
    stages: Vec<Stage>,
    pub(crate) dropped: Dropped,
}

impl Processors {
    pub(crate) fn new(pipeline: &Pipeline) -> Self {
        let stages = pipeline
            .processors
            .iter()
            .map(|(_, p)| match p {
                ProcessorConfig::Batch => Stage::Pass,
                ProcessorConfig::Filter(f) => Stage::Filter(f.clone()),
                ProcessorConfig::TailSampling(c) => Stage::Tail(Box::new(TailBuffer::new(c))),
            })
            .collect();
        Processors {
            stages,
            dropped: Dropped::default(),
        }
    }

    /// Runs a received batch through every stage; returns what reaches
    /// the exporters now.
    pub(crate) fn push(&mut self, batch: Vec<Received>, now: Instant) -> Vec<Received> {
        self.run_from(0, batch, now)
    }

    fn run_from(&mut self, start: usize, mut batch: Vec<Received>, now: Instant) -> Vec<Received> {
        for i in start..self.stages.len() {
            if batch.is_empty() {
                break;
            }
            match &mut self.stages[i] {
                Stage::Pass => {}
                Stage::Filter(f) => {
                    let before = batch.len();
                    batch.retain(|s| !f.drops(&s.row));
                    self.dropped.filtered += (before - batch.len()) as u64;
                }
                Stage::Tail(t) => {
                    batch = t.accept(batch, now);
                    self.dropped.not_sampled += std::mem::take(&mut t.dropped);
                }
            }
        }
        batch
    }

    /// Decides the traces whose `decision_wait` is over (all, with
    /// `flush`); returns what reaches the store.
    pub(crate) fn tick(&mut self, now: Instant, flush: bool) -> Vec<Received> {
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            let released = match &mut self.stages[i] {
                Stage::Tail(t) => {
                    let released = t.due(now, flush);
                    self.dropped.not_sampled += std::mem::take(&mut t.dropped);
                    released
                }
                _ => continue,
            };
            out.extend(self.run_from(i + 1, released, now));
        }
        out
    }

    /// When the next trace is due for a decision.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.stages
            .iter()
            .filter_map(|s| match s {
                Stage::Tail(t) => t.next_deadline(),
                _ => None,
            })
            .min()
    }
}

struct Pending {
    spans: Vec<Received>,
}

/// Spans buffered per trace until the trace is decided.
struct TailBuffer {
    config: TailSamplingConfig,
    pending: HashMap<String, Pending>,
    /// Trace ids by first arrival.
    order: VecDeque<(Instant, String)>,
    /// Recently decided traces (kept or not), for spans arriving late.
    decided: HashMap<String, bool>,
    decided_order: VecDeque<String>,
    /// Spans dropped since last read.
    dropped: u64,
}

impl TailBuffer {
    fn new(config: &TailSamplingConfig) -> Self {
        TailBuffer {
            config: config.clone(),
            pending: HashMap::new(),
            order: VecDeque::new(),
            decided: HashMap::new(),
            decided_order: VecDeque::new(),
            dropped: 0,
        }
    }

    fn accept(&mut self, batch: Vec<Received>, now: Instant) -> Vec<Received> {
        let mut out = Vec::new();
        for span in batch {
            if let Some(&kept) = self.decided.get(&span.row.trace_id) {
                // A late span follows its trace's decision.
                if kept {
                    out.push(span);
                } else {
                    self.dropped += 1;
                }
                continue;
            }
            if let Some(p) = self.pending.get_mut(&span.row.trace_id) {
                if p.spans.len() < self.config.max_spans_per_trace {
                    p.spans.push(span);
                } else {
                    self.dropped += 1;
                }
                continue;
            }
            self.order.push_back((now, span.row.trace_id.clone()));
            self.pending
                .insert(span.row.trace_id.clone(), Pending { spans: vec![span] });
            // Over num_traces: the oldest trace is decided now.
            while self.pending.len() > self.config.num_traces {
                let Some((_, oldest)) = self.order.pop_front() else {
                    break;
                };
                out.extend(self.decide(&oldest, now));
            }
        }
        out
    }

    fn due(&mut self, now: Instant, all: bool) -> Vec<Received> {
        let mut out = Vec::new();
        while let Some((first, _)) = self.order.front() {
            if !all && *first + self.config.decision_wait > now {
                break;
            }
            let Some((_, trace)) = self.order.pop_front() else {
                break;
            };
            out.extend(self.decide(&trace, now));
        }
        out
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.order
            .front()
            .map(|(first, _)| *first + self.config.decision_wait)
    }

    fn decide(&mut self, trace: &str, now: Instant) -> Vec<Received> {
        let Some(pending) = self.pending.remove(trace) else {
            return Vec::new();
        };
        let trace_id = TraceId::from_hex(trace).unwrap_or(TraceId::INVALID);
        let spans: Vec<SpanData> = pending.spans.iter().map(|s| span_data(&s.row)).collect();
        // The Collector's rule: a drop wins, then any sample keeps.
        let mut kept = false;
        for policy in self.config.policies.iter() {
            match policy.evaluate(trace_id, &spans, now) {
                Verdict::Drop => {
                    kept = false;
                    break;
                }
                Verdict::Sample => kept = true,
                Verdict::NotSample => {}
            }
        }
        self.decided.insert(trace.to_owned(), kept);
        self.decided_order.push_back(trace.to_owned());
        while self.decided_order.len() > self.config.decision_cache {
            if let Some(old) = self.decided_order.pop_front() {
                self.decided.remove(&old);
            }
        }
        if kept {
            pending.spans
        } else {
            self.dropped += pending.spans.len() as u64;
            Vec::new()
        }
    }
}

/// The parts of a stored span the policies read: ids, times, status,
/// attributes, scope.
fn span_data(row: &SpanRow) -> SpanData {
    let time = |ns: i64| UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    let attributes = match serde_json::from_str(&row.attributes) {
        Ok(Json::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| value(v).map(|v| KeyValue::new(k, v)))
            .collect(),
        _ => Vec::new(),
    };
    let scope: Json = serde_json::from_str(&row.scope).unwrap_or(Json::Null);
    let text = |key: &str| -> Cow<'static, str> {
        Cow::Owned(
            scope
                .get(key)
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    };
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_hex(&row.trace_id).unwrap_or(TraceId::INVALID),
            SpanId::from_hex(&row.span_id).unwrap_or(SpanId::INVALID),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: row
            .parent_span_id
            .as_deref()
            .and_then(SpanId::from_hex)
            .unwrap_or(SpanId::INVALID),
        parent_is_remote: false,
        name: Cow::Owned(row.name.clone()),
        kind: match row.kind {
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Internal,
        },
        start_time: time(row.start_ns),
        end_time: time(row.end_ns),
        attributes,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: match row.status_code {
            1 => Status::Ok,
            2 => Status::Error {
                message: Cow::Owned(row.status_message.clone()),
            },
            _ => Status::Unset,
        },
        scope: InstrumentationScope {
            name: text("name"),
            version: Some(text("version")).filter(|v| !v.is_empty()),
        },
    }
}

fn value(v: Json) -> Option<Value> {
    match v {
        Json::Bool(b) => Some(Value::Bool(b)),
        Json::Number(n) => n.as_i64().map(Value::I64).or(n.as_f64().map(Value::F64)),
        Json::String(s) => Some(Value::String(Cow::Owned(s))),
        _ => None,
    }
}
