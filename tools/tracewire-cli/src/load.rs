//! Reading OTLP/JSON lines: files, standard input, any reader.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span as ProtoSpan, span, status};
use serde::Deserialize;
use tracewire::{Array, KeyValue, SpanId, SpanKind, Status, TraceId, Value};

use crate::model::{Event, Span, Trace, UNKNOWN_SERVICE};

/// Why input could not be read. Bad lines are not errors: they are skipped
/// and counted in [`LoadStats`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Reading failed part way (a directory, a device error, …).
    #[error("cannot read {name}: {source}")]
    Read {
        /// The file name, or `<stdin>`.
        name: String,
        /// What the operating system said.
        source: io::Error,
    },
}

/// A line that was skipped because it is not an OTLP/JSON
/// `ExportTraceServiceRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// The file name, or `<stdin>`.
    pub source: String,
    /// The line number, from 1.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.reason)
    }
}

/// What reading found besides the traces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Non-blank lines read.
    pub lines: usize,
    /// Lines skipped because they are not OTLP/JSON requests.
    pub bad_lines: usize,
    /// The first few bad lines (at most [`LoadStats::MAX_EXAMPLES`]).
    pub bad_line_examples: Vec<BadLine>,
    /// Spans read.
    pub spans: usize,
    /// Spans skipped because their trace id or span id is missing, zero or
    /// of the wrong length.
    pub invalid_spans: usize,
    /// Spans skipped because a span with the same trace id and span id was
    /// already read.
    pub duplicate_spans: usize,
}

impl LoadStats {
    /// How many bad lines are kept as examples.
    pub const MAX_EXAMPLES: usize = 5;
}

/// Reads OTLP/JSON lines from any number of sources and merges their spans
/// by trace id.
///
/// ```
/// use tracewire_cli::Loader;
///
/// let line = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"GET /cart","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000250000000"}]}]}]}"#;
/// let mut loader = Loader::new();
/// loader.read(format!("{line}\nnot json\n").as_bytes(), "example")?;
/// let traces = loader.finish();
/// assert_eq!(traces.stats().bad_lines, 1);
/// let trace = traces.find("4bf9")?;
/// assert_eq!(trace.span(trace.root()).service, "checkout");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Loader {
    spans: HashMap<TraceId, Vec<Span>>,
    seen: std::collections::HashSet<(TraceId, SpanId)>,
    stats: LoadStats,
}

/// One line: an `ExportTraceServiceRequest`, whose `resourceSpans` must be
/// present (so that other JSON lines are reported rather than read as empty
/// requests).
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "resourceSpans")]
    resource_spans: Vec<ResourceSpans>,
}

impl Loader {
    /// A loader with nothing read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or read.
    pub fn read_path(&mut self, path: impl AsRef<Path>) -> Result<(), LoadError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| LoadError::Open {
            path: path.to_owned(),
            source,
        })?;
        self.read(BufReader::new(file), &path.display().to_string())
    }

    /// Reads lines from `reader`; `name` names it in messages about bad
    /// lines.
    ///
    /// # Errors
    /// When reading fails.
    pub fn read(&mut self, mut reader: impl BufRead, name: &str) -> Result<(), LoadError> {
        let mut buf = Vec::new();
        let mut number = 0;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| LoadError::Read {
                    name: name.to_owned(),
                    source,
                })?;
            if n == 0 {
                return Ok(());
            }
            number += 1;
            let mut line = buf.as_slice();
            if number == 1 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            // Without the line end, parse errors point into this line.
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.stats.lines += 1;
            match parse(line) {
                Ok(request) => self.add(request.resource_spans),
                Err(e) => {
                    self.stats.bad_lines += 1;
                    if self.stats.bad_line_examples.len() < LoadStats::MAX_EXAMPLES {
                        self.stats.bad_line_examples.push(BadLine {
                            source: name.to_owned(),
                            line: number,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
    }

    fn add(&mut self, resource_spans: Vec<ResourceSpans>) {
        for rs in resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                self.add_span(convert(span, &service));
            }
        }
    }

    /// Adds one span read from elsewhere (the collector's API); `None`
    /// counts a span whose ids were missing or invalid.
    pub(crate) fn add_span(&mut self, span: Option<Span>) {
        self.stats.spans += 1;
        let Some(span) = span else {
            self.stats.invalid_spans += 1;
            return;
        };
        if self.seen.insert((span.trace_id, span.span_id)) {
            self.spans.entry(span.trace_id).or_default().push(span);
        } else {
            self.stats.duplicate_spans += 1;
        }
    }

    /// The traces read so far.
    pub fn finish(self) -> Traces {
        let mut traces: Vec<Trace> = self
            .spans
            .into_values()
            .filter_map(|spans| Trace::from_spans(spans).ok())
            .collect();
        traces.sort_by_key(|t| (t.start_unix_nano(), t.id()));
        let index = traces
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id(), i))
            .collect();
        Traces {
            traces,
            index,
            stats: self.stats,
        }
    }
}

/// One line as a request. The OTLP/JSON encoding writes enums as integers;
/// lines from encoders that write their names (`"SPAN_KIND_SERVER"`,
/// `"STATUS_CODE_ERROR"`) are accepted too.
fn parse(line: &[u8]) -> Result<Line, serde_json::Error> {
    serde_json::from_slice::<Line>(line).or_else(|first| {
        let mut value: serde_json::Value = serde_json::from_slice(line)?;
        if !enum_names_to_numbers(&mut value) {
            return Err(first);
        }
        serde_json::from_value(value).map_err(|_| first)
    })
}

/// Replaces span kind and status code names by their numbers; whether
/// anything was replaced.
fn enum_names_to_numbers(request: &mut serde_json::Value) -> bool {
    let mut changed = false;
    let spans = request
        .get_mut("resourceSpans")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten()
        .filter_map(|rs| rs.get_mut("scopeSpans")?.as_array_mut())
        .flatten()
        .filter_map(|ss| ss.get_mut("spans")?.as_array_mut())
        .flatten();
    for one in spans {
        if let Some(kind) = one.get_mut("kind")
            && let Some(number) = kind.as_str().and_then(span::SpanKind::from_str_name)
        {
            *kind = (number as i32).into();
            changed = true;
        }
        if let Some(code) = one.get_mut("status").and_then(|s| s.get_mut("code"))
            && let Some(number) = code.as_str().and_then(status::StatusCode::from_str_name)
        {
            *code = (number as i32).into();
            changed = true;
        }
    }
    changed
}

fn convert(span: ProtoSpan, service: &str) -> Option<Span> {
    let trace_id = TraceId::from_bytes(span.trace_id.as_slice().try_into().ok()?);
    let span_id = SpanId::from_bytes(span.span_id.as_slice().try_into().ok()?);
    if !trace_id.is_valid() || !span_id.is_valid() {
        return None;
    }
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        8 => Some(SpanId::from_bytes(
            span.parent_span_id.as_slice().try_into().ok()?,
        ))
        .filter(|p| p.is_valid()),
        _ => return None,
    };
    let kind = kind_from_otlp(span.kind);
    let status = match span.status {
        Some(s) => status_from_otlp(s.code, s.message),
        None => Status::Unset,
    };
    Some(Span {
        trace_id,
        span_id,
        parent_span_id,
        service: service.to_owned(),
        name: span.name,
        kind,
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        status,
        attributes: attributes(span.attributes),
        events: span
            .events
            .into_iter()
            .map(|e| Event {
                name: e.name,
                time_unix_nano: e.time_unix_nano,
                attributes: attributes(e.attributes),
            })
            .collect(),
    })
}

/// An OTLP `SpanKind` number as the viewer's kind (unspecified and
/// unknown ones as internal).
pub(crate) fn kind_from_otlp(kind: i32) -> SpanKind {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// An OTLP `StatusCode` number and message as the viewer's status.
pub(crate) fn status_from_otlp(code: i32, message: String) -> Status {
    if code == status::StatusCode::Error as i32 {
        Status::Error {
            message: message.into(),
        }
    } else if code == status::StatusCode::Ok as i32 {
        Status::Ok
    } else {
        Status::Unset
    }
}

fn attributes(list: Vec<ProtoKeyValue>) -> Vec<KeyValue> {
    list.into_iter()
        .filter_map(|kv| {
            let value = kv.value.and_then(|v| value(&v))?;
            Some(KeyValue::new(kv.key, value))
        })
        .collect()
}

fn value(v: &AnyValue) -> Option<Value> {
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => Value::String(s.clone().into()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::I64(*i),
        any_value::Value::DoubleValue(d) => Value::F64(*d),
        any_value::Value::ArrayValue(a) => match homogeneous(&a.values) {
            Some(array) => Value::Array(array),
            None => Value::String(display_any(v.value.as_ref()?).into()),
        },
        other => Value::String(display_any(other).into()),
    })
}

/// An OTLP array whose values are all of one scalar type, as attributes
/// are; `None` for mixed or nested arrays (shown as a string instead).
fn homogeneous(values: &[AnyValue]) -> Option<Array> {
    fn all<T>(values: &[AnyValue], f: impl Fn(&any_value::Value) -> Option<T>) -> Option<Vec<T>> {
        values.iter().map(|v| f(v.value.as_ref()?)).collect()
    }
    use any_value::Value as V;
    Some(match values.first()?.value.as_ref()? {
        V::StringValue(_) => Array::String(all(values, |v| match v {
            V::StringValue(s) => Some(s.clone().into()),
            _ => None,
        })?),
        V::BoolValue(_) => Array::Bool(all(values, |v| match v {
            V::BoolValue(b) => Some(*b),
            _ => None,
        })?),
        V::IntValue(_) => Array::I64(all(values, |v| match v {
            V::IntValue(i) => Some(*i),
            _ => None,
        })?),
        V::DoubleValue(_) => Array::F64(all(values, |v| match v {
            V::DoubleValue(d) => Some(*d),
            _ => None,
        })?),
        _ => return None,
    })
}

/// Arrays, maps and bytes as one readable string.
fn display_any(v: &any_value::Value) -> String {
    match v {
        any_value::Value::StringValue(s) => format!("{s:?}"),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BytesValue(b) => b.iter().map(|b| format!("{b:02x}")).collect(),
        any_value::Value::ArrayValue(a) => {
            let items: Vec<String> = a
                .values
                .iter()
                .filter_map(|v| v.value.as_ref().map(display_any))
                .collect();
            format!("[{}]", items.join(", "))
        }
        any_value::Value::KvlistValue(kv) => {
            let items: Vec<String> = kv
                .values
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map_or_else(|| "null".to_owned(), display_any);
                    format!("{}: {v}", kv.key)
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// Why a trace id given by a user does not name exactly one trace.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// The text is not hex digits, or longer than a trace id.
    #[error("{query:?} is not a trace id: expected up to 32 hex digits")]
    Invalid {
        /// What was given.
        query: String,
    },
    /// No trace id starts with the text.
    #[error(
        "no trace id starts with {query:?} ({loaded} trace{} loaded; `tracewire list` shows them)",
        if *loaded == 1 { "" } else { "s" }
    )]
    NotFound {
        /// What was given.
        query: String,
        /// How many traces were loaded.
        loaded: usize,
    },
    /// Several trace ids start with the text.
    #[error("{query:?} matches {} traces ({}); give more digits", matches.len(), list_ids(matches))]
    Ambiguous {
        /// What was given.
        query: String,
        /// The matching trace ids.
        matches: Vec<TraceId>,
    },
}

fn list_ids(ids: &[TraceId]) -> String {
    let mut shown: Vec<String> = ids.iter().take(5).map(TraceId::to_string).collect();
    if ids.len() > 5 {
        shown.push(format!("and {} more", ids.len() - 5));
    }
    shown.join(", ")
}

/// `prefix` (hex digits, any case, surrounding spaces ignored) as lowercase
/// hex.
///
/// # Errors
/// When it is empty, not hex or longer than a trace id.
pub(crate) fn id_query(prefix: &str) -> Result<String, FindError> {
    let query = prefix.trim().to_ascii_lowercase();
    if query.is_empty() || query.len() > 32 || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FindError::Invalid {
            query: prefix.to_owned(),
        });
    }
    Ok(query)
}

/// The one id among `ids` that starts with `prefix`; `None` when none
/// does (what to say about that depends on where the ids came from).
///
/// # Errors
/// When `prefix` is not hex, or several ids start with it.
pub(crate) fn find_id(
    prefix: &str,
    ids: impl IntoIterator<Item = TraceId>,
) -> Result<Option<TraceId>, FindError> {
    let query = id_query(prefix)?;
    // Sorted and each once: the same id may be given twice.
    let matches: Vec<TraceId> = ids
        .into_iter()
        .filter(|id| id.to_hex().as_str().starts_with(&query))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(FindError::Ambiguous {
            query: prefix.to_owned(),
            matches,
        }),
    }
}

/// Every trace read, in start order, with what reading found.
#[derive(Clone, Debug, Default)]
pub struct Traces {
    traces: Vec<Trace>,
    index: BTreeMap<TraceId, usize>,
    stats: LoadStats,
}

impl Traces {
    /// Reads every file in `paths` and merges their spans.
    ///
    /// # Errors
    /// When a file cannot be opened or read.
    pub fn from_paths<I>(paths: I) -> Result<Self, LoadError>
    where
        I: IntoIterator,
        I::Item: AsRef<Path>,
    {
        let mut loader = Loader::new();
        for path in paths {
            loader.read_path(path)?;
        }
        Ok(loader.finish())
    }

    /// Reads lines from `reader`.
    ///
    /// # Errors
    /// When reading fails.
    pub fn from_reader(reader: impl BufRead) -> Result<Self, LoadError> {
        let mut loader = Loader::new();
        loader.read(reader, "<input>")?;
        Ok(loader.finish())
    }

    /// The traces, earliest first.
    pub fn iter(&self) -> std::slice::Iter<'_, Trace> {
        self.traces.iter()
    }

    /// How many traces were read.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether no trace was read.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The trace with id `id`.
    pub fn get(&self, id: TraceId) -> Option<&Trace> {
        self.index.get(&id).map(|&i| &self.traces[i])
    }

    /// The one trace whose id starts with `prefix` (hex digits, any case;
    /// surrounding spaces are ignored).
    ///
    /// # Errors
    /// When `prefix` is not hex, or names no trace or several.
    pub fn find(&self, prefix: &str) -> Result<&Trace, FindError> {
        match find_id(prefix, self.index.keys().copied())? {
            Some(id) => Ok(&self.traces[self.index[&id]]),
            None => Err(FindError::NotFound {
                query: prefix.to_owned(),
                loaded: self.traces.len(),
            }),
        }
    }

    /// Lines, bad lines and spans read.
    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }
}

impl<'a> IntoIterator for &'a Traces {
    type Item = &'a Trace;
    type IntoIter = std::slice::Iter<'a, Trace>;

    fn into_iter(self) -> Self::IntoIter {
        self.traces.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str =
        r#""resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]}"#;

    fn line(spans: &str) -> String {
        format!(r#"{{"resourceSpans":[{{{RESOURCE},"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#)
    }

    fn span(trace: &str, id: &str, parent: &str, extra: &str) -> String {
        format!(
            r#"{{"traceId":"{trace}","spanId":"{id}","parentSpanId":"{parent}","name":"op {id}","kind":3,"startTimeUnixNano":"1000","endTimeUnixNano":"3000"{extra}}}"#
        )
    }

    const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const T2: &str = "4bf92f3577b34da6a3ce929d0e0e0002";

    #[test]
    fn reads_spans_with_service_kind_status_and_attributes() {
        let extra = r#","status":{"code":2,"message":"boom"},"attributes":[{"key":"db.system.name","value":{"stringValue":"postgresql"}},{"key":"rows","value":{"intValue":"7"}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":2}]}}},{"key":"accept","value":{"arrayValue":{"values":[{"stringValue":"text/html"},{"stringValue":"*/*"}]}}}]"#;
        let input = line(&span(T1, "00f067aa0ba902b7", "", extra));
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        let trace = traces.find(T1).unwrap();
        let s = trace.span(0);
        assert_eq!(s.service, "orders");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.name, "op 00f067aa0ba902b7");
        assert_eq!((s.start_unix_nano, s.end_unix_nano), (1000, 3000));
        assert_eq!(s.error_message(), Some("boom"));
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.attribute("rows"), Some(&Value::I64(7)));
        assert_eq!(
            s.attribute("db.system.name").and_then(Value::as_str),
            Some("postgresql")
        );
        assert_eq!(
            s.attribute("tags").and_then(Value::as_str),
            Some(r#"["a", 2]"#),
            "a mixed array is shown as a string"
        );
        assert_eq!(
            s.attribute("accept"),
            Some(&Value::from(vec!["text/html", "*/*"]))
        );
    }

    #[test]
    fn enum_names_are_accepted_for_kind_and_status() {
        let extra = r#","status":{"code":"STATUS_CODE_ERROR","message":"boom"}"#;
        let input = line(&span(T1, "00f067aa0ba902b7", "", extra))
            .replace(r#""kind":3"#, r#""kind":"SPAN_KIND_PRODUCER""#);
        assert!(input.contains("SPAN_KIND_PRODUCER"));
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        let s = traces.find(T1).unwrap().span(0);
        assert_eq!(s.kind, SpanKind::Producer);
        assert_eq!(s.error_message(), Some("boom"));

        let input = line(&span(T1, "00f067aa0ba902b7", "", ""))
            .replace(r#""kind":3"#, r#""kind":"SIDEWAYS""#);
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        assert_eq!(traces.stats().bad_lines, 1);
        assert!(
            traces.stats().bad_line_examples[0]
                .reason
                .contains("invalid type"),
            "the first error is reported: {:?}",
            traces.stats().bad_line_examples
        );
    }

    #[test]
    fn merges_spans_from_many_lines_by_trace_id() {
        let input = [
            line(&span(T1, "0000000000000001", "", "")),
            line(&span(T2, "0000000000000002", "", "")),
            line(&span(T1, "0000000000000003", "0000000000000001", "")),
        ]
        .join("\n");
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        assert_eq!(traces.len(), 2);
        assert_eq!(traces.find(T1).unwrap().spans().len(), 2);
        assert_eq!(traces.stats().spans, 3);
    }

    #[test]
    fn bad_lines_are_skipped_counted_and_located() {
        let input = format!(
            "\u{feff}{}\n\nnot json\n{{\"level\":\"info\"}}\n\u{0}\u{ff}\n[1,2]\n{}\r\n",
            line(&span(T1, "0000000000000001", "", "")),
            line(&span(T1, "0000000000000002", "0000000000000001", "")),
        );
        let mut loader = Loader::new();
        loader.read(input.as_bytes(), "in.jsonl").unwrap();
        let traces = loader.finish();
        assert_eq!(traces.stats().lines, 6);
        assert_eq!(traces.stats().bad_lines, 4);
        assert_eq!(traces.stats().bad_line_examples[0].line, 3);
        assert!(
            traces.stats().bad_line_examples[0]
                .to_string()
                .starts_with("in.jsonl:3: ")
        );
        assert_eq!(traces.find(T1).unwrap().spans().len(), 2);
    }

    #[test]
    fn invalid_ids_skip_the_span_not_the_line() {
        let input = line(
            &[
                span(
                    "00000000000000000000000000000000",
                    "0000000000000001",
                    "",
                    "",
                ),
                span(T1, "0000000000000000", "", ""),
                span(T1, "00000000000001", "", ""),
                span(T1, "0000000000000005", "0001", ""),
                span(T1, "0000000000000006", "0000000000000000", ""),
            ]
            .join(","),
        );
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        assert_eq!(traces.stats().invalid_spans, 4);
        assert_eq!(traces.stats().bad_lines, 0);
        let trace = traces.find(T1).unwrap();
        assert_eq!(trace.spans().len(), 1);
        assert_eq!(
            trace.span(0).parent_span_id,
            None,
            "a zero parent id means none"
        );
    }

    #[test]
    fn duplicates_across_lines_are_counted_once() {
        let one = line(&span(T1, "0000000000000001", "", ""));
        let traces = Traces::from_reader(format!("{one}\n{one}\n").as_bytes()).unwrap();
        assert_eq!(traces.stats().duplicate_spans, 1);
        assert_eq!(traces.find(T1).unwrap().spans().len(), 1);
    }

    #[test]
    fn missing_service_name_is_unknown_service() {
        let input = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            span(T1, "0000000000000001", "", "")
        );
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        assert_eq!(traces.find(T1).unwrap().span(0).service, UNKNOWN_SERVICE);
    }

    #[test]
    fn find_by_prefix_reports_unknown_ambiguous_and_invalid_ids() {
        let input = [
            line(&span(T1, "0000000000000001", "", "")),
            line(&span(T2, "0000000000000002", "", "")),
        ]
        .join("\n");
        let traces = Traces::from_reader(input.as_bytes()).unwrap();
        assert_eq!(
            traces
                .find("4BF92F3577B34DA6A3CE929D0E0E4736")
                .unwrap()
                .id()
                .to_string(),
            T1
        );
        assert_eq!(
            traces
                .find(" 4bf92f3577b34da6a3ce929d0e0e47")
                .unwrap()
                .id()
                .to_string(),
            T1
        );
        assert!(matches!(
            traces.find("4bf9"),
            Err(FindError::Ambiguous { matches, .. }) if matches.len() == 2
        ));
        assert_eq!(
            traces.find("ffff").unwrap_err().to_string(),
            "no trace id starts with \"ffff\" (2 traces loaded; `tracewire list` shows them)"
        );
        assert!(matches!(traces.find("xyz"), Err(FindError::Invalid { .. })));
        assert!(matches!(traces.find(""), Err(FindError::Invalid { .. })));
        assert!(matches!(
            traces.find(&"a".repeat(33)),
            Err(FindError::Invalid { .. })
        ));
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = Traces::from_paths(["/nonexistent/traces.jsonl"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot open /nonexistent/traces.jsonl: "),
            "{err}"
        );
    }
}
