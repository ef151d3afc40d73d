//! The `filter` processor: the subset of the Collector's OTTL span
//! conditions that drops spans by attribute value or regex.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value as Json};

use crate::config::ConfigError;
use crate::store::SpanRow;

/// Most conditions in one filter.
const MAX_CONDITIONS: usize = 1_000;
/// Longest condition, in bytes.
const MAX_CONDITION_BYTES: usize = 4_096;
/// Largest compiled regex, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a condition reads from a span.
#[derive(Clone, Debug, PartialEq)]
enum Path {
    /// `name`.
    Name,
    /// `attributes["key"]`.
    Attribute(String),
    /// `resource.attributes["key"]`.
    ResourceAttribute(String),
}

/// One `traces.span` condition.
#[derive(Clone, Debug)]
enum Condition {
    /// `path == literal` (`equal`) or `path != literal`.
    Compare {
        path: Path,
        literal: Json,
        equal: bool,
    },
    /// `IsMatch(path, "regex")`.
    IsMatch { path: Path, regex: Regex },
}

/// A filter's span conditions: a span matching any of them is dropped.
#[derive(Clone, Debug)]
pub(crate) struct SpanFilter {
    conditions: Vec<Condition>,
}

fn invalid(id: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("processor {id:?}: {message}"))
}

impl SpanFilter {
    /// Reads `{error_mode, traces: {span: [condition, …]}}`.
    pub(crate) fn from_settings(id: &str, settings: &Json) -> Result<Self, ConfigError> {
        let empty = Map::new();
        let settings = match settings {
            Json::Object(m) => m,
            Json::Null => &empty,
            _ => return Err(invalid(id, "not a mapping")),
        };
        let mut conditions = Vec::new();
        for (key, value) in settings {
            match key.as_str() {
                "error_mode" => match value.as_str() {
                    Some("ignore" | "silent" | "propagate") => {}
                    _ => return Err(invalid(id, "error_mode: not ignore, silent or propagate")),
                },
                "traces" => {
                    let Json::Object(traces) = value else {
                        return Err(invalid(id, "traces: not a mapping"));
                    };
                    for (key, value) in traces {
                        if key != "span" {
                            return Err(invalid(
                                id,
                                format!("traces.{key}: not supported yet (only traces.span)"),
                            ));
                        }
                        let Json::Array(items) = value else {
                            return Err(invalid(id, "traces.span: not a list"));
                        };
                        for item in items {
                            let Some(text) = item.as_str() else {
                                return Err(invalid(id, "traces.span: not a list of strings"));
                            };
                            conditions.push(parse_condition(text).map_err(|reason| {
                                invalid(id, format!("condition {text:?}: {reason}"))
                            })?);
                            if conditions.len() > MAX_CONDITIONS {
                                return Err(invalid(
                                    id,
                                    format!("more than {MAX_CONDITIONS} conditions"),
                                ));
                            }
                        }
                    }
                }
                "spans" => {
                    return Err(invalid(
                        id,
                        "spans (the legacy include/exclude settings): not supported; write \
                         traces.span conditions",
                    ));
                }
                _ => return Err(invalid(id, format!("unknown setting {key:?}"))),
            }
        }
        Ok(SpanFilter { conditions })
    }

    /// Whether the span is dropped.
    pub(crate) fn drops(&self, span: &SpanRow) -> bool {
        let mut attributes = None;
        let mut resource = None;
        self.conditions.iter().any(|condition| {
            let path = match condition {
                Condition::Compare { path, .. } | Condition::IsMatch { path, .. } => path,
            };
            let value = match path {
                Path::Name => Some(Json::String(span.name.clone())),
                Path::Attribute(key) => attributes
                    .get_or_insert_with(|| parse_object(&span.attributes))
                    .get(key)
                    .cloned(),
                Path::ResourceAttribute(key) => resource
                    .get_or_insert_with(|| parse_object(&span.resource))
                    .get(key)
                    .cloned(),
            };
            match condition {
                Condition::Compare { literal, equal, .. } => {
                    let same = value.as_ref().is_some_and(|v| same_value(v, literal));
                    same == *equal
                }
                Condition::IsMatch { regex, .. } => {
                    matches!(value, Some(Json::String(s)) if regex.is_match(&s))
                }
            }
        })
    }
}

fn parse_object(text: &str) -> Map<String, Json> {
    match serde_json::from_str(text) {
        Ok(Json::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Numbers compare by value (`200` equals `200.0`), others exactly.
fn same_value(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A small recursive-descent reader over one condition.
struct Reader<'a> {
    rest: &'a str,
}

impl<'a> Reader<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected {token:?} at {:?}", self.rest))
        }
    }

    /// A double-quoted string with `\"` and `\\` escapes.
    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let Some(body) = self.rest.strip_prefix('"') else {
            return Err(format!("expected a string at {:?}", self.rest));
        };
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &body[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c)) => out.push(c),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("a string is not closed".into())
    }

    fn path(&mut self) -> Result<Path, String> {
        if self.eat("resource.attributes[") {
            let key = self.string()?;
            self.expect("]")?;
            Ok(Path::ResourceAttribute(key))
        } else if self.eat("attributes[") {
            let key = self.string()?;
            self.expect("]")?;
            Ok(Path::Attribute(key))
        } else if self.eat("name") {
            Ok(Path::Name)
        } else {
            Err(format!(
                "expected name, attributes[\"…\"] or resource.attributes[\"…\"] at {:?}",
                self.rest
            ))
        }
    }

    fn literal(&mut self) -> Result<Json, String> {
        self.skip_ws();
        if self.rest.starts_with('"') {
            return self.string().map(Json::String);
        }
        let end = self
            .rest
            .find(|c: char| c.is_whitespace())
            .unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        let value = match word {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => {
                if let Ok(i) = word.parse::<i64>() {
                    Json::from(i)
                } else if let Some(f) = word.parse::<f64>().ok().filter(|f| f.is_finite()) {
                    Json::from(f)
                } else {
                    return Err(format!("expected a string, number or boolean at {word:?}"));
                }
            }
        };
        self.rest = rest;
        Ok(value)
    }
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    if text.len() > MAX_CONDITION_BYTES {
        return Err(format!("longer than {MAX_CONDITION_BYTES} bytes"));
    }
    let mut r = Reader { rest: text };
    let condition = if r.eat("IsMatch(") {
        let path = r.path()?;
        r.expect(",")?;
        let pattern = r.string()?;
        r.expect(")")?;
        let regex = RegexBuilder::new(&pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("bad regex: {e}"))?;
        Condition::IsMatch { path, regex }
    } else {
        let path = r.path()?;
        let equal = if r.eat("==") {
            true
        } else if r.eat("!=") {
            false
        } else {
            return Err(format!("expected == or != at {:?}", r.rest));
        };
        let literal = r.literal()?;
        Condition::Compare {
            path,
            literal,
            equal,
        }
    };
    r.skip_ws();
    if !r.rest.is_empty() {
        return Err(format!(
            "unsupported at {:?} (one comparison or IsMatch per condition; list several \
             conditions instead of `or`)",
            r.rest
        ));
    }
    Ok(condition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, attributes: &str) -> SpanRow {
        SpanRow {
            trace_id: "0".repeat(32),
            span_id: "1".repeat(16),
            parent_span_id: None,
            service: "s".into(),
            name: name.into(),
            kind: 2,
            start_ns: 0,
            end_ns: 1,
            status_code: 0,
            status_message: String::new(),
            trace_state: String::new(),
            flags: 0,
            attributes: attributes.into(),
            events: "[]".into(),
            links: "[]".into(),
            resource: r#"{"service.name":"s"}"#.into(),
            scope: "{}".into(),
        }
    }

    fn filter(conditions: &[&str]) -> SpanFilter {
        let settings = serde_json::json!({"error_mode": "ignore", "traces": {"span": conditions}});
        SpanFilter::from_settings("filter", &settings).unwrap()
    }

    #[test]
    fn conditions_match_as_documented() {
        let f = filter(&[
            r#"attributes["http.route"] == "/health""#,
            r#"IsMatch(attributes["url.path"], "^/ready")"#,
            r#"attributes["http.response.status_code"] == 204"#,
            r#"resource.attributes["service.name"] == "probe""#,
            r#"IsMatch(name, "ping$")"#,
        ]);
        assert!(f.drops(&span("GET", r#"{"http.route":"/health"}"#)));
        assert!(f.drops(&span("GET", r#"{"url.path":"/ready/x"}"#)));
        assert!(f.drops(&span("GET", r#"{"http.response.status_code":204}"#)));
        assert!(f.drops(&span("db ping", "{}")));
        assert!(!f.drops(&span(
            "GET",
            r#"{"http.route":"/checkout","url.path":"/x/ready"}"#
        )));
        assert!(!f.drops(&span("GET", r#"{"http.route":7}"#)));
        let not = filter(&[r#"name != "keep""#]);
        assert!(not.drops(&span("other", "{}")));
        assert!(!not.drops(&span("keep", "{}")));
    }

    #[test]
    fn unsupported_conditions_are_errors_naming_them() {
        for bad in [
            r#"attributes["a"] == "x" or name == "y""#,
            r#"span.name == "x""#,
            r#"IsMatch(attributes["a"], "(")"#,
            r#"attributes["a"] > 3"#,
        ] {
            let settings = serde_json::json!({"traces": {"span": [bad]}});
            let err = SpanFilter::from_settings("filter/health", &settings)
                .unwrap_err()
                .to_string();
            assert!(err.contains("filter/health"), "{err}");
        }
    }
}
