//! Turning `tracing` fields into attributes, names, kinds, statuses and
//! exception events.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::time::SystemTime;

use tracing_core::Metadata;
use tracing_core::field::{Field, Visit};

use super::SpanLimits;
use super::state::Recording;
use crate::span_data::{Event, KeyValue, Str, Value};
use crate::{SpanKind, Status};

/// Field names that carry an error rather than an attribute.
fn is_error_field(name: &str) -> bool {
    name == "error" || name == "exception"
}

fn int(value: i128) -> Value {
    match i64::try_from(value) {
        Ok(v) => Value::I64(v),
        Err(_) => Value::String(Cow::Owned(value.to_string())),
    }
}

fn uint(value: u128) -> Value {
    match i64::try_from(value) {
        Ok(v) => Value::I64(v),
        Err(_) => Value::String(Cow::Owned(value.to_string())),
    }
}

/// Builds an `exception` event.
fn exception_event(message: &str, error_type: Option<String>, mut extra: Vec<KeyValue>) -> Event {
    let mut attributes = Vec::with_capacity(2 + extra.len());
    if let Some(t) = error_type {
        attributes.push(KeyValue::new("exception.type", t));
    }
    attributes.push(KeyValue::new("exception.message", message.to_owned()));
    attributes.append(&mut extra);
    Event {
        name: Cow::Borrowed("exception"),
        timestamp: SystemTime::now(),
        attributes,
        dropped_attributes_count: 0,
    }
}

/// The `Visit` methods for numbers and booleans, which both visitors turn
/// into attribute values the same way (through their own `set`).
macro_rules! record_numbers_and_bools {
    () => {
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.set(field, Value::I64(value));
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            self.set(field, uint(u128::from(value)));
        }

        fn record_i128(&mut self, field: &Field, value: i128) {
            self.set(field, int(value));
        }

        fn record_u128(&mut self, field: &Field, value: u128) {
            self.set(field, uint(value));
        }

        fn record_f64(&mut self, field: &Field, value: f64) {
            self.set(field, Value::F64(value));
        }

        fn record_bool(&mut self, field: &Field, value: bool) {
            self.set(field, Value::Bool(value));
        }
    };
}

/// Records span fields (at creation and on `Span::record`).
pub(super) struct SpanVisitor<'a> {
    rec: &'a mut Recording,
    limits: &'a SpanLimits,
    update: bool,
}

impl<'a> SpanVisitor<'a> {
    /// `update`: fields may already be set (a `record` call), so look for
    /// them before adding.
    pub(super) fn new(rec: &'a mut Recording, limits: &'a SpanLimits, update: bool) -> Self {
        SpanVisitor {
            rec,
            limits,
            update,
        }
    }

    fn set(&mut self, field: &Field, value: Value) {
        self.rec.set_attribute(
            KeyValue {
                key: Cow::Borrowed(field.name()),
                value,
            },
            self.update,
            self.limits,
        );
    }

    /// Handles `otel.*` and error fields; false for ordinary fields.
    fn special(&mut self, field: &Field, value: &str) -> bool {
        let name = field.name();
        // Most fields are ordinary: one prefix test instead of the string
        // comparisons of the match below.
        if !(name.starts_with("otel.") || is_error_field(name)) {
            return false;
        }
        match name {
            "otel.name" => self.rec.name = Cow::Owned(value.to_owned()),
            "otel.kind" => {
                if let Some(kind) = SpanKind::parse(value) {
                    self.rec.kind = kind;
                }
            }
            "otel.status_code" => {
                if value.eq_ignore_ascii_case("ok") {
                    self.rec.set_status(Status::Ok);
                } else if value.eq_ignore_ascii_case("error") {
                    self.rec.set_status(Status::Error {
                        message: Cow::Borrowed(""),
                    });
                }
            }
            "otel.status_message" => self.rec.set_status_message(Cow::Owned(value.to_owned())),
            name if is_error_field(name) => self.error(value, None),
            _ => return false,
        }
        true
    }

    fn error(&mut self, message: &str, error_type: Option<String>) {
        self.rec.set_status(Status::Error {
            message: Cow::Owned(message.to_owned()),
        });
        let event = exception_event(message, error_type, Vec::new());
        self.rec.push_event(event, self.limits);
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field, value) {
            self.set(field, Value::String(Cow::Owned(value.to_owned())));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        // The formatted text is ours: a name or message takes it as it is.
        match field.name() {
            "otel.name" => self.rec.name = Cow::Owned(text),
            "otel.status_message" => self.rec.set_status_message(Cow::Owned(text)),
            _ => {
                if !self.special(field, &text) {
                    self.set(field, Value::String(Cow::Owned(text)));
                }
            }
        }
    }

    fn record_error(&mut self, _field: &Field, value: &(dyn Error + 'static)) {
        self.error(&value.to_string(), crate::error::error_type_of(value));
    }

    record_numbers_and_bools!();
}

/// Collects an event's fields: its message becomes the event name, error
/// fields make it an `exception` event.
pub(super) struct EventVisitor {
    metadata: &'static Metadata<'static>,
    message: Option<String>,
    attributes: Vec<KeyValue>,
    dropped: u32,
    max_attributes: usize,
    error: Option<(String, Option<String>)>,
}

impl EventVisitor {
    pub(super) fn new(metadata: &'static Metadata<'static>, limits: &SpanLimits) -> Self {
        let max_attributes = limits.max_attributes_per_event as usize;
        let mut attributes = Vec::with_capacity(metadata.fields().len().min(max_attributes) + 1);
        attributes.push(KeyValue::new("level", metadata.level().as_str()));
        EventVisitor {
            metadata,
            message: None,
            attributes,
            dropped: 0,
            max_attributes,
            error: None,
        }
    }

    fn set(&mut self, field: &Field, value: Value) {
        if self.attributes.len() < self.max_attributes {
            self.attributes.push(KeyValue {
                key: Cow::Borrowed(field.name()),
                value,
            });
        } else {
            self.dropped += 1;
        }
    }

    /// The event, and the error message when it carried an error.
    pub(super) fn finish(self) -> (Event, Option<Str>) {
        match self.error {
            Some((message, error_type)) => {
                let mut extra = self.attributes;
                if let Some(m) = self.message {
                    extra.push(KeyValue::new("message", m));
                }
                let mut event = exception_event(&message, error_type, extra);
                event.dropped_attributes_count = self.dropped;
                (event, Some(Cow::Owned(message)))
            }
            None => {
                let name = match self.message {
                    Some(m) => Cow::Owned(m),
                    None => Cow::Borrowed(self.metadata.name()),
                };
                let event = Event {
                    name,
                    timestamp: SystemTime::now(),
                    attributes: self.attributes,
                    dropped_attributes_count: self.dropped,
                };
                (event, None)
            }
        }
    }
}

impl Visit for EventVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            name if is_error_field(name) => self.error = Some((value.to_owned(), None)),
            _ => self.set(field, Value::String(Cow::Owned(value.to_owned()))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(text),
            name if is_error_field(name) => self.error = Some((text, None)),
            _ => self.set(field, Value::String(Cow::Owned(text))),
        }
    }

    fn record_error(&mut self, _field: &Field, value: &(dyn Error + 'static)) {
        self.error = Some((value.to_string(), crate::error::error_type_of(value)));
    }

    record_numbers_and_bools!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_become_strings() {
        assert_eq!(
            uint(u128::from(u64::MAX)),
            Value::String("18446744073709551615".into())
        );
        assert_eq!(uint(5), Value::I64(5));
        assert_eq!(int(-5), Value::I64(-5));
    }
}
