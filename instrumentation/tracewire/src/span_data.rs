//! Finished spans as they leave the layer: what processors and exporters see.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::{SpanContext, SpanId};

/// A string that is usually `'static` (field names, span names) and owned
/// only when it has to be.
pub type Str = Cow<'static, str>;

/// An attribute value. Types are preserved: integers stay integers.
#[derive(Clone, PartialEq, Debug)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer (unsigned values that fit are stored here too).
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A string.
    String(Str),
    /// An array of values of one type (OpenTelemetry attributes allow
    /// homogeneous arrays), e.g. `http.request.header.accept`.
    Array(Array),
}

/// The values of an array attribute, all of one type.
///
/// ```
/// use tracewire::{Array, Value};
///
/// let accept = Value::from(vec!["text/html".to_owned(), "*/*".to_owned()]);
/// assert_eq!(accept, Value::Array(Array::String(vec!["text/html".into(), "*/*".into()])));
/// assert_eq!(accept.to_string(), r#"["text/html", "*/*"]"#);
/// ```
#[derive(Clone, PartialEq, Debug)]
pub enum Array {
    /// Booleans.
    Bool(Vec<bool>),
    /// Signed 64-bit integers.
    I64(Vec<i64>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// Strings.
    String(Vec<Str>),
}

impl Array {
    /// How many values the array holds.
    pub fn len(&self) -> usize {
        match self {
            Array::Bool(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::String(v) => v.len(),
        }
    }

    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T>(
            f: &mut fmt::Formatter<'_>,
            items: &[T],
            item: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
        ) -> fmt::Result {
            f.write_str("[")?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                item(f, v)?;
            }
            f.write_str("]")
        }
        match self {
            Array::Bool(v) => list(f, v, |f, v| v.fmt(f)),
            Array::I64(v) => list(f, v, |f, v| v.fmt(f)),
            Array::F64(v) => list(f, v, |f, v| v.fmt(f)),
            Array::String(v) => list(f, v, |f, v| write!(f, "{v:?}")),
        }
    }
}

impl Value {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::I64(v) => Some(*v),
            _ => None,
        }
    }

    /// The float, if this is a float value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::F64(v) => Some(*v),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => v.fmt(f),
            Value::I64(v) => v.fmt(f),
            Value::F64(v) => v.fmt(f),
            Value::String(v) => f.write_str(v),
            Value::Array(v) => v.fmt(f),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v $(as $cast)?)
            }
        })*
    };
}

value_from!(bool => Bool, i64 => I64, i32 => I64 as i64, u32 => I64 as i64, f64 => F64);

impl From<&'static str> for Value {
    fn from(v: &'static str) -> Self {
        Value::String(Cow::Borrowed(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(Cow::Owned(v))
    }
}

impl From<Str> for Value {
    fn from(v: Str) -> Self {
        Value::String(v)
    }
}

impl From<Array> for Value {
    fn from(v: Array) -> Self {
        Value::Array(v)
    }
}

macro_rules! array_from {
    ($($t:ty => $variant:ident $(, $convert:expr)?;)*) => {
        $(impl From<Vec<$t>> for Value {
            fn from(v: Vec<$t>) -> Self {
                Value::Array(Array::$variant(v$(.into_iter().map($convert).collect())?))
            }
        })*
    };
}

array_from! {
    bool => Bool;
    i64 => I64;
    f64 => F64;
    Str => String;
    String => String, Cow::Owned;
    &'static str => String, Cow::Borrowed;
}

/// A named attribute.
#[derive(Clone, PartialEq, Debug)]
pub struct KeyValue {
    /// The attribute name, e.g. `http.request.method`.
    pub key: Str,
    /// The attribute value.
    pub value: Value,
}

impl KeyValue {
    /// A key/value pair.
    ///
    /// ```
    /// use tracewire::{KeyValue, Value};
    ///
    /// let kv = KeyValue::new("http.response.status_code", 200);
    /// assert_eq!(kv.value, Value::I64(200));
    /// ```
    pub fn new(key: impl Into<Str>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The role of a span in a trace (OpenTelemetry's `SpanKind`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum SpanKind {
    /// An internal operation (the default).
    #[default]
    Internal,
    /// The server side of a synchronous request.
    Server,
    /// The client side of a synchronous request.
    Client,
    /// The sender of an asynchronous message.
    Producer,
    /// The receiver of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// Parses the value of an `otel.kind` field (case-insensitive).
    ///
    /// ```
    /// use tracewire::SpanKind;
    /// assert_eq!(SpanKind::parse("SERVER"), Some(SpanKind::Server));
    /// assert_eq!(SpanKind::parse("sideways"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        [
            ("internal", SpanKind::Internal),
            ("server", SpanKind::Server),
            ("client", SpanKind::Client),
            ("producer", SpanKind::Producer),
            ("consumer", SpanKind::Consumer),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, kind)| kind)
    }

    /// The lowercase name, as written in `otel.kind`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// The outcome of a span. `Ok` is final; `Error` replaces `Unset`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub enum Status {
    /// No outcome was set (the default; success for most operations).
    #[default]
    Unset,
    /// Explicitly marked successful.
    Ok,
    /// The operation failed.
    Error {
        /// A description of the failure.
        message: Str,
    },
}

impl Status {
    /// Whether this is an error status.
    pub fn is_error(&self) -> bool {
        matches!(self, Status::Error { .. })
    }
}

/// Something that happened during a span.
#[derive(Clone, PartialEq, Debug)]
pub struct Event {
    /// The event name (the event's message, or `exception`).
    pub name: Str,
    /// When it happened.
    pub timestamp: SystemTime,
    /// Its fields.
    pub attributes: Vec<KeyValue>,
    /// Fields left out over the attribute limit.
    pub dropped_attributes_count: u32,
}

/// A reference from one span to another (`follows_from`, a batch message,
/// a restarted trace).
#[derive(Clone, PartialEq, Debug)]
pub struct Link {
    /// The span linked to.
    pub span_context: SpanContext,
    /// Attributes of the link.
    pub attributes: Vec<KeyValue>,
    /// Attributes left out over the limit.
    pub dropped_attributes_count: u32,
}

/// What produced a span: the crate part of the `tracing` target.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct InstrumentationScope {
    /// The scope name, e.g. `tracewire_tower` or `my_service`.
    pub name: Str,
    /// The scope version, when known.
    pub version: Option<Str>,
}

/// A finished, sampled span.
#[derive(Clone, PartialEq, Debug)]
pub struct SpanData {
    /// Ids, flags and trace state.
    pub span_context: SpanContext,
    /// The parent span id, or [`SpanId::INVALID`] for a root span.
    pub parent_span_id: SpanId,
    /// Whether the parent is in another process.
    pub parent_is_remote: bool,
    /// The span name (`otel.name`, or the `tracing` span name).
    pub name: Str,
    /// The span kind.
    pub kind: SpanKind,
    /// Wall-clock start.
    pub start_time: SystemTime,
    /// Wall-clock end: the start plus the monotonic duration.
    pub end_time: SystemTime,
    /// The span's attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes left out over the limit.
    pub dropped_attributes_count: u32,
    /// The span's events.
    pub events: Vec<Event>,
    /// Events left out over the limit.
    pub dropped_events_count: u32,
    /// The span's links.
    pub links: Vec<Link>,
    /// Links left out over the limit.
    pub dropped_links_count: u32,
    /// The outcome.
    pub status: Status,
    /// What produced the span.
    pub scope: InstrumentationScope,
}

impl SpanData {
    /// How long the span lasted.
    pub fn duration(&self) -> Duration {
        self.end_time
            .duration_since(self.start_time)
            .unwrap_or_default()
    }

    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    /// Whether this span has no parent in this process (a root span, or the
    /// first span under a remote parent).
    pub fn is_local_root(&self) -> bool {
        !self.parent_span_id.is_valid() || self.parent_is_remote
    }
}
