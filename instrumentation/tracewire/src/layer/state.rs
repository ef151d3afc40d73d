//! Per-span data kept in the span's extensions.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_core::Metadata;

use super::SpanLimits;
use super::clock::Timestamp;
use super::fields::EventVisitor;
use crate::span_data::{Event, InstrumentationScope, KeyValue, Link, Str};
use crate::{Baggage, SpanContext, SpanData, SpanId, SpanKind, Status};

/// What the layer stores for every span, sampled or not: the context (for
/// children, propagation and log correlation) and, for sampled spans only,
/// the recording.
///
/// The recording is boxed: an unsampled span's state stays small (about
/// 80 bytes instead of 300), which every span pays for in copies.
pub(crate) struct SpanState {
    pub(crate) cx: SpanContext,
    pub(crate) baggage: Baggage,
    has_children: AtomicBool,
    pub(crate) recording: Option<Box<Recording>>,
}

impl SpanState {
    pub(crate) fn new(
        cx: SpanContext,
        baggage: Baggage,
        recording: Option<Box<Recording>>,
    ) -> Self {
        SpanState {
            cx,
            baggage,
            has_children: AtomicBool::new(false),
            recording,
        }
    }

    /// Marks that a child took this span's context.
    pub(crate) fn note_child(&self) {
        if !self.has_children.load(Ordering::Relaxed) {
            self.has_children.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn has_children(&self) -> bool {
        self.has_children.load(Ordering::Relaxed)
    }
}

/// The part of a `tracing` target before its first `::` (the crate name
/// for module-path targets), or the whole target.
///
/// Runs for every sampled span: a byte scan, not a `str` pattern search
/// (whose searcher setup costs more than the scan).
fn crate_of(target: &str) -> &str {
    let bytes = target.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b':' && bytes[i + 1] == b':' {
            return &target[..i];
        }
        i += 1;
    }
    target
}

/// The recorded data of a sampled span, turned into [`SpanData`] on close.
pub(crate) struct Recording {
    parent_span_id: SpanId,
    parent_is_remote: bool,
    pub(super) name: Str,
    pub(super) kind: SpanKind,
    start: Timestamp,
    pub(super) attributes: Vec<KeyValue>,
    pub(super) dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    links: Vec<Link>,
    dropped_links: u32,
    status: Status,
    scope: &'static str,
}

impl Recording {
    pub(crate) fn start(
        metadata: &'static Metadata<'static>,
        parent: Option<&SpanContext>,
        field_count: usize,
    ) -> Self {
        let target = metadata.target();
        Recording {
            parent_span_id: parent.map_or(SpanId::INVALID, SpanContext::span_id),
            parent_is_remote: parent.is_some_and(SpanContext::is_remote),
            name: Cow::Borrowed(metadata.name()),
            kind: SpanKind::Internal,
            start: Timestamp::now(),
            attributes: Vec::with_capacity(field_count),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            links: Vec::new(),
            dropped_links: 0,
            status: Status::Unset,
            scope: crate_of(target),
        }
    }

    /// Keeps what `previous` recorded (name, kind, start, fields, events)
    /// under this recording's new parent.
    pub(crate) fn adopt(&mut self, previous: Recording) {
        let (parent, remote) = (self.parent_span_id, self.parent_is_remote);
        *self = previous;
        self.parent_span_id = parent;
        self.parent_is_remote = remote;
    }

    /// Sets attribute `key`, replacing an earlier value when `update`.
    pub(super) fn set_attribute(&mut self, kv: KeyValue, update: bool, limits: &SpanLimits) {
        if update && let Some(existing) = self.attributes.iter_mut().find(|a| a.key == kv.key) {
            existing.value = kv.value;
            return;
        }
        if self.attributes.len() < limits.max_attributes as usize {
            self.attributes.push(kv);
        } else {
            self.dropped_attributes += 1;
        }
    }

    /// Applies a status: `Ok` is final, `Error` replaces `Unset`, `Unset`
    /// changes nothing.
    pub(super) fn set_status(&mut self, status: Status) {
        match (&self.status, &status) {
            (Status::Ok, _) | (_, Status::Unset) => {}
            (Status::Error { .. }, Status::Error { .. }) => {}
            _ => self.status = status,
        }
    }

    /// Sets the message of an Error status (from `otel.status_message`).
    pub(super) fn set_status_message(&mut self, message: Str) {
        match &mut self.status {
            Status::Error { message: m } => *m = message,
            Status::Unset => self.status = Status::Error { message },
            Status::Ok => {}
        }
    }

    pub(super) fn push_event(&mut self, event: Event, limits: &SpanLimits) {
        if self.events.len() < limits.max_events as usize {
            self.events.push(event);
        } else {
            self.dropped_events += 1;
        }
    }

    pub(crate) fn add_link(&mut self, span_context: SpanContext, limits: &SpanLimits) {
        if self.links.len() < limits.max_links as usize {
            self.links.push(Link {
                span_context,
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            });
        } else {
            self.dropped_links += 1;
        }
    }

    /// Records an event; when `sets_status`, an error it carries or its
    /// `ERROR` level (`error_level`) sets the span status.
    pub(super) fn add_event(
        &mut self,
        visitor: EventVisitor,
        sets_status: bool,
        error_level: bool,
        limits: &SpanLimits,
    ) {
        let (event, error) = visitor.finish();
        if sets_status {
            match error {
                Some(message) => self.set_status(Status::Error { message }),
                None if error_level => self.set_status(Status::Error {
                    message: Cow::Owned(event.name.to_string()),
                }),
                None => {}
            }
        }
        self.push_event(event, limits);
    }

    pub(crate) fn finish(self, span_context: SpanContext) -> SpanData {
        SpanData {
            span_context,
            parent_span_id: self.parent_span_id,
            parent_is_remote: self.parent_is_remote,
            name: self.name,
            kind: self.kind,
            start_time: self.start.system_time(),
            end_time: self.start.end(),
            attributes: self.attributes,
            dropped_attributes_count: self.dropped_attributes,
            events: self.events,
            dropped_events_count: self.dropped_events,
            links: self.links,
            dropped_links_count: self.dropped_links,
            status: self.status,
            scope: InstrumentationScope {
                name: Cow::Borrowed(self.scope),
                version: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn the_scope_is_the_target_up_to_the_first_double_colon() {
        assert_eq!(crate_of("my_app::handlers::users"), "my_app");
        assert_eq!(crate_of("my_app"), "my_app");
        assert_eq!(crate_of("a:b::c"), "a:b");
        assert_eq!(crate_of("::x"), "");
        assert_eq!(crate_of("trailing:"), "trailing:");
        assert_eq!(crate_of(""), "");
    }
}
