//! Policies from a configuration file shaped like the OpenTelemetry
//! Collector's `tail_sampling` processor settings, written as JSON.
//!
//! Every value is read with its expected JSON type (a value of another type
//! is an error naming the policy and the field), then checked against a
//! documented range (a value outside it is clamped, with a
//! [`PolicyWarning`]). The file itself is bounded: its size, the number of
//! policies, their nesting, the length of strings and lists.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value as Json};

use super::{Composite, Policy, Probabilistic, RateAllocation, RateLimit, StatusMatch, TailConfig};

/// Longest policy file read, in bytes.
pub(crate) const MAX_FILE_BYTES: usize = 1 << 20;
/// Most policies in a file, counting those nested in `and`, `drop` and
/// `composite`.
pub(crate) const MAX_POLICIES: usize = 1_000;
/// Deepest nesting: a top-level policy is at level 1, its sub-policies at 2.
pub(crate) const MAX_DEPTH: usize = 8;
/// Longest policy name, type, attribute key or `rate_allocation` name, in
/// bytes.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Longest attribute value or `hash_salt`, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 4_096;
/// Most items in one list (`values`, `status_codes`, `policy_order`,
/// `rate_allocation`).
pub(crate) const MAX_LIST_ITEMS: usize = 1_000;

const MAX_DECISION_WAIT_MS: f64 = 3_600_000.0;
const MAX_NUM_TRACES: f64 = 1_000_000.0;
const MAX_LATENCY_MS: f64 = 86_400_000.0;
const MAX_SPANS_PER_SECOND: f64 = 1_000_000_000.0;
const MAX_SPAN_COUNT: f64 = 2_147_483_647.0;

const TYPES: &str = "always_sample, latency, status_code, probabilistic, string_attribute, \
                     numeric_attribute, boolean_attribute, span_count, rate_limiting, and, drop, \
                     composite";

/// A policy file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyConfigError {
    /// Not JSON (this includes JSON nested more than 128 levels deep and
    /// numbers beyond the range of `f64`).
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A policy is malformed or of an unknown type, or the file is over one
    /// of its bounds (then `policy` is empty).
    #[error("policy {policy:?}: {reason}")]
    Policy {
        /// The policy's `name` (or its position, `#0`, `parent/#1`); empty
        /// for the file as a whole.
        policy: String,
        /// What is wrong.
        reason: String,
    },
}

/// A value of a policy file that was not used as written: clamped into its
/// range, or ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyWarning {
    /// The policy's `name` (or its position); empty for the file's own
    /// settings.
    pub policy: String,
    /// The field, e.g. `latency.threshold_ms`.
    pub field: String,
    /// What was done.
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.policy.is_empty() {
            write!(f, "{}: {}", self.field, self.message)
        } else {
            write!(
                f,
                "policy {:?}: {}: {}",
                self.policy, self.field, self.message
            )
        }
    }
}

/// A policy file read by [`policy_file_from_json`].
#[derive(Debug)]
#[non_exhaustive]
pub struct PolicyFile {
    /// The policies, in file order.
    pub policies: Vec<Policy>,
    /// The stage's configuration: the base given, with `decision_wait_ms`
    /// and `num_traces` applied.
    pub config: TailConfig,
    /// Values clamped into their range, and fields ignored.
    pub warnings: Vec<PolicyWarning>,
}

/// Reads a policy file like [`policy_file_from_json`] and drops its
/// warnings.
///
/// ```
/// use tracewire::tail::{policies_from_json, TailConfig};
///
/// let file = r#"{
///   "decision_wait_ms": 2000,
///   "policies": [
///     {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
///     {"name": "slow", "type": "latency", "latency": {"threshold_ms": 2000}},
///     {"name": "some", "type": "probabilistic", "probabilistic": {"sampling_percentage": 1}}
///   ]
/// }"#;
/// let (policies, config) = policies_from_json(file, TailConfig::default()).unwrap();
/// assert_eq!(policies.len(), 3);
/// assert_eq!(config.decision_wait.as_millis(), 2000);
/// ```
///
/// # Errors
/// As [`policy_file_from_json`].
pub fn policies_from_json(
    text: &str,
    base: TailConfig,
) -> Result<(Vec<Policy>, TailConfig), PolicyConfigError> {
    policy_file_from_json(text, base).map(|file| (file.policies, file.config))
}

/// Reads `{"decision_wait_ms": …, "num_traces": …, "policies": […]}`, the
/// Collector's `tail_sampling` settings in JSON, into policies and the
/// stage's configuration (starting from `base`), with a warning for every
/// value clamped or ignored.
///
/// Policies are `{"name": …, "type": …, "<type>": {…}}` as in the
/// Collector: `always_sample`; `latency` (`threshold_ms`,
/// `upper_threshold_ms`, 0 or absent for no upper bound); `status_code`
/// (`status_codes`: `ERROR`, `OK`, `UNSET`); `probabilistic`
/// (`sampling_percentage`, `hash_salt`; decided as the Collector does, see
/// [`Probabilistic`]); `string_attribute` (`key`, `values`,
/// `invert_match`); `numeric_attribute` (`key`, `min_value`, `max_value`);
/// `boolean_attribute` (`key`, `value`); `span_count` (`min_spans`,
/// `max_spans`, 0 or absent for no upper bound); `rate_limiting`
/// (`spans_per_second`); `and` (`and_sub_policy`); `drop`
/// (`drop_sub_policy`); `composite` (`max_total_spans_per_second`,
/// `policy_order`, `composite_sub_policy`, `rate_allocation` of
/// `{"policy", "percent"}`; see [`Composite`]).
///
/// Ranges (a value outside is clamped to the nearest end, with a warning;
/// a fraction in a whole-number field is truncated, with a warning):
///
/// | field | range |
/// |---|---|
/// | `decision_wait_ms` | 0 ..= 3 600 000 (1 h) |
/// | `num_traces` | 1 ..= 1 000 000 |
/// | `latency.threshold_ms`, `latency.upper_threshold_ms` | 0 ..= 86 400 000 (24 h) |
/// | `probabilistic.sampling_percentage` | 0 ..= 100 |
/// | `rate_limiting.spans_per_second` | 0 ..= 10⁹ |
/// | `span_count.min_spans`, `span_count.max_spans` | 0 ..= 2 147 483 647 |
/// | `composite.max_total_spans_per_second` | 0 ..= 10⁹ |
/// | `rate_allocation[].percent` | 0 ..= 100 |
///
/// Bounds of the file (over one, the file is an error): at most 1 MiB of
/// text, 1 000 policies in all, 8 levels of nesting (`and`, `drop` and
/// `composite` sub-policies; `composite` only at the top level, as in the
/// Collector), names, types and attribute keys of at most 256 bytes,
/// attribute values and `hash_salt` of at most 4 096 bytes, lists of at
/// most 1 000 items.
///
/// Unknown fields are ignored with a warning; so is the Collector's
/// `decision_wait` (a duration string: write `decision_wait_ms`). The
/// Collector's `expected_new_traces_per_sec` and
/// `string_attribute.cache_max_size` are accepted and unused.
///
/// ```
/// use tracewire::tail::{policy_file_from_json, TailConfig};
///
/// let file = r#"{"num_traces": 1e12, "policies": [
///     {"name": "slow", "type": "latency", "latency": {"threshold_ms": 1e300}}
/// ]}"#;
/// let file = policy_file_from_json(file, TailConfig::default()).unwrap();
/// assert_eq!(file.config.max_traces, 1_000_000);
/// assert_eq!(file.warnings.len(), 2);
/// assert_eq!(file.warnings[1].policy, "slow");
/// assert_eq!(file.warnings[1].field, "latency.threshold_ms");
/// ```
///
/// # Errors
/// When the text is not JSON, is over one of the file's bounds, or a
/// policy is malformed: an unknown type, a missing required field, a value
/// of the wrong JSON type (e.g. `"threshold_ms": "2s"`), an unknown status
/// code, or a feature not supported here (`enabled_regex_matching`,
/// `invert_match` on numeric and boolean attributes).
pub fn policy_file_from_json(
    text: &str,
    base: TailConfig,
) -> Result<PolicyFile, PolicyConfigError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(file_error(format!(
            "the file has {} bytes, more than the {MAX_FILE_BYTES} read",
            text.len()
        )));
    }
    let root: Json = serde_json::from_str(text)?;
    let root = root
        .as_object()
        .ok_or_else(|| file_error("expected a JSON object".into()))?;
    let mut parser = Parser::default();
    let mut config = base;
    let top = Fields {
        policy: "",
        prefix: "",
        map: Some(root),
    };
    for key in root.keys() {
        match key.as_str() {
            "decision_wait_ms" | "num_traces" | "policies" | "expected_new_traces_per_sec" => {}
            "decision_wait" => parser.warn(
                "",
                key,
                "not read (a Collector duration string); write decision_wait_ms".into(),
            ),
            _ => parser.warn("", key, "unknown field, ignored".into()),
        }
    }
    if let Some(ms) = top.number("decision_wait_ms")? {
        let ms = parser.clamp("", "decision_wait_ms", ms, 0.0, MAX_DECISION_WAIT_MS);
        config.decision_wait = millis(ms);
        if config.decision_wait > config.trace_timeout {
            parser.warn(
                "",
                "decision_wait_ms",
                format!(
                    "longer than trace_timeout ({} ms): traces whose root never ends here are \
                     decided at the timeout",
                    config.trace_timeout.as_millis()
                ),
            );
        }
    }
    if let Some(n) = top.number("num_traces")? {
        let n = parser.whole("", "num_traces", n, 1.0, MAX_NUM_TRACES);
        config.max_traces = usize::try_from(n).unwrap_or(usize::MAX);
    }
    let list = top
        .array("policies")?
        .ok_or_else(|| file_error("expected a \"policies\" array".into()))?;
    let policies = list
        .iter()
        .enumerate()
        .map(|(i, p)| parser.policy(p, format!("#{i}"), 1, Place::Top))
        .collect::<Result<_, _>>()?;
    Ok(PolicyFile {
        policies,
        config,
        warnings: parser.warnings,
    })
}

fn file_error(reason: String) -> PolicyConfigError {
    PolicyConfigError::Policy {
        policy: String::new(),
        reason,
    }
}

/// A duration of `ms` milliseconds, `ms` already clamped to a finite
/// non-negative range.
fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::ZERO)
}

fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Where a policy sits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Nested,
    InComposite,
}

/// The typed fields of one JSON object; `null` counts as absent.
struct Fields<'a> {
    policy: &'a str,
    /// The policy type, prefixed to field names in messages.
    prefix: &'a str,
    map: Option<&'a Map<String, Json>>,
}

impl<'a> Fields<'a> {
    fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn fail(&self, reason: String) -> PolicyConfigError {
        PolicyConfigError::Policy {
            policy: self.policy.to_owned(),
            reason,
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Json) -> PolicyConfigError {
        self.fail(format!(
            "{}: expected {expected}, found {}",
            self.field(key),
            type_name(found)
        ))
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    fn missing(&self, key: &str) -> PolicyConfigError {
        self.fail(format!("{} is required", self.field(key)))
    }

    fn number(&self, key: &str) -> Result<Option<f64>, PolicyConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a number", &Json::Null)),
            Some(other) => Err(self.wrong_type(key, "a number", other)),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, PolicyConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    fn check_len(&self, key: &str, s: &str, max: usize) -> Result<(), PolicyConfigError> {
        if s.len() > max {
            return Err(self.fail(format!(
                "{}: {} bytes, more than {max}",
                self.field(key),
                s.len()
            )));
        }
        Ok(())
    }

    fn string(&self, key: &str, max: usize) -> Result<Option<String>, PolicyConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => {
                self.check_len(key, s, max)?;
                Ok(Some(s.clone()))
            }
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Json>>, PolicyConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    fn list(&self, key: &str) -> Result<Option<&'a Vec<Json>>, PolicyConfigError> {
        let items = self.array(key)?;
        if let Some(items) = items
            && items.len() > MAX_LIST_ITEMS
        {
            return Err(self.fail(format!(
                "{}: {} items, more than {MAX_LIST_ITEMS}",
                self.field(key),
                items.len()
            )));
        }
        Ok(items)
    }

    fn strings(&self, key: &str, max: usize) -> Result<Option<Vec<String>>, PolicyConfigError> {
        let Some(items) = self.list(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| match item {
                Json::String(s) => {
                    self.check_len(key, s, max)?;
                    Ok(s.clone())
                }
                other => Err(self.wrong_type(key, "a list of strings", other)),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

#[derive(Default)]
struct Parser {
    warnings: Vec<PolicyWarning>,
    count: usize,
}

impl Parser {
    fn warn(&mut self, policy: &str, field: &str, message: String) {
        self.warnings.push(PolicyWarning {
            policy: policy.to_owned(),
            field: field.to_owned(),
            message,
        });
    }

    /// `value` within `[min, max]`, with a warning when it was not.
    fn clamp(&mut self, policy: &str, field: &str, value: f64, min: f64, max: f64) -> f64 {
        let clamped = if value.is_nan() {
            min
        } else {
            value.clamp(min, max)
        };
        if clamped != value || value.is_nan() {
            self.warn(
                policy,
                field,
                format!("{value} is outside {min} ..= {max}; using {clamped}"),
            );
        }
        clamped
    }

    /// A whole number within `[min, max]` (`min` ≥ 0), with a warning when
    /// `value` was not.
    fn whole(&mut self, policy: &str, field: &str, value: f64, min: f64, max: f64) -> u64 {
        let clamped = self.clamp(policy, field, value, min, max);
        let whole = clamped.trunc();
        if whole != clamped {
            self.warn(
                policy,
                field,
                format!("{clamped} is not a whole number; using {whole}"),
            );
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = whole as u64;
        whole
    }

    fn policy(
        &mut self,
        p: &Json,
        label: String,
        depth: usize,
        place: Place,
    ) -> Result<Policy, PolicyConfigError> {
        let fail = |policy: &str, reason: String| PolicyConfigError::Policy {
            policy: policy.to_owned(),
            reason,
        };
        let Json::Object(map) = p else {
            return Err(fail(
                &label,
                format!("expected a policy object, found {}", type_name(p)),
            ));
        };
        self.count += 1;
        if self.count > MAX_POLICIES {
            return Err(file_error(format!(
                "more than {MAX_POLICIES} policies (counting nested ones)"
            )));
        }
        let name = Fields {
            policy: &label,
            prefix: "",
            map: Some(map),
        }
        .string("name", MAX_NAME_BYTES)?;
        let name = name.unwrap_or(label);
        let outer = Fields {
            policy: &name,
            prefix: "",
            map: Some(map),
        };
        if depth > MAX_DEPTH {
            return Err(outer.fail(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        let kind = outer
            .string("type", MAX_NAME_BYTES)?
            .ok_or_else(|| outer.missing("type"))?;
        let body = match map.get(&kind) {
            None | Some(Json::Null) => None,
            Some(Json::Object(body)) => Some(body),
            Some(other) => return Err(outer.wrong_type(&kind, "an object", other)),
        };
        for key in map.keys() {
            if key != "name" && key != "type" && *key != kind {
                self.warn(&name, key, format!("ignored: the policy's type is {kind}"));
            }
        }
        let f = Fields {
            policy: &name,
            prefix: &kind,
            map: body,
        };
        let known: &[&str] = match kind.as_str() {
            "always_sample" => &[],
            "latency" => &["threshold_ms", "upper_threshold_ms"],
            "status_code" => &["status_codes"],
            "probabilistic" => &["sampling_percentage", "hash_salt"],
            "string_attribute" => &[
                "key",
                "values",
                "invert_match",
                "enabled_regex_matching",
                "cache_max_size",
            ],
            "numeric_attribute" => &["key", "min_value", "max_value", "invert_match"],
            "boolean_attribute" => &["key", "value", "invert_match"],
            "span_count" => &["min_spans", "max_spans"],
            "rate_limiting" => &["spans_per_second"],
            "and" => &["and_sub_policy"],
            "drop" => &["drop_sub_policy"],
            "composite" => &[
                "max_total_spans_per_second",
                "policy_order",
                "composite_sub_policy",
                "rate_allocation",
            ],
            other => {
                return Err(outer.fail(format!(
                    "unknown policy type {other:?} (supported: {TYPES})"
                )));
            }
        };
        for key in body.into_iter().flat_map(Map::keys) {
            if !known.contains(&key.as_str()) {
                self.warn(&name, &f.field(key), "unknown field, ignored".into());
            }
        }
        match (kind.as_str(), place) {
            ("composite", Place::Top) => {}
            ("composite", _) => {
                return Err(outer.fail(
                    "composite is only allowed as a top-level policy (as in the Collector)".into(),
                ));
            }
            ("drop", Place::InComposite) => {
                return Err(
                    outer.fail("drop is not allowed inside composite (as in the Collector)".into())
                );
            }
            _ => {}
        }
        Ok(match kind.as_str() {
            "always_sample" => Policy::AlwaysSample,
            "latency" => self.latency(&f)?,
            "status_code" => {
                let codes = f
                    .strings("status_codes", MAX_NAME_BYTES)?
                    .ok_or_else(|| f.missing("status_codes"))?;
                let mut matches = Vec::new();
                for code in codes {
                    let code = match code.to_ascii_uppercase().as_str() {
                        "ERROR" => StatusMatch::Error,
                        "OK" => StatusMatch::Ok,
                        "UNSET" => StatusMatch::Unset,
                        _ => {
                            return Err(f.fail(format!(
                                "status_code.status_codes: {code:?} is not ERROR, OK or UNSET"
                            )));
                        }
                    };
                    if !matches.contains(&code) {
                        matches.push(code);
                    }
                }
                Policy::StatusCode(matches)
            }
            "probabilistic" => {
                let percentage = f
                    .number("sampling_percentage")?
                    .ok_or_else(|| f.missing("sampling_percentage"))?;
                let field = f.field("sampling_percentage");
                let percentage = self.clamp(&name, &field, percentage, 0.0, 100.0);
                let salt = f.string("hash_salt", MAX_VALUE_BYTES)?.unwrap_or_default();
                Policy::SaltedProbabilistic(Probabilistic::new(percentage, salt))
            }
            "string_attribute" => {
                if f.boolean("enabled_regex_matching")? == Some(true) {
                    return Err(f.fail(
                        "string_attribute.enabled_regex_matching is not supported (values match \
                         exactly)"
                            .into(),
                    ));
                }
                // Read for its type only: there is no regex cache here.
                f.number("cache_max_size")?;
                Policy::StringAttribute {
                    key: f
                        .string("key", MAX_NAME_BYTES)?
                        .ok_or_else(|| f.missing("key"))?,
                    values: f.strings("values", MAX_VALUE_BYTES)?.unwrap_or_default(),
                    invert: f.boolean("invert_match")?.unwrap_or(false),
                }
            }
            "numeric_attribute" => {
                self.no_invert(&f)?;
                let min = f.number("min_value")?.unwrap_or(f64::NEG_INFINITY);
                let max = f.number("max_value")?.unwrap_or(f64::INFINITY);
                if min > max {
                    self.warn(
                        &name,
                        &f.field("max_value"),
                        format!("{max} is below min_value {min}: the policy never samples"),
                    );
                }
                Policy::NumericAttribute {
                    key: f
                        .string("key", MAX_NAME_BYTES)?
                        .ok_or_else(|| f.missing("key"))?,
                    min,
                    max,
                }
            }
            "boolean_attribute" => {
                self.no_invert(&f)?;
                Policy::BooleanAttribute {
                    key: f
                        .string("key", MAX_NAME_BYTES)?
                        .ok_or_else(|| f.missing("key"))?,
                    value: f.boolean("value")?.ok_or_else(|| f.missing("value"))?,
                }
            }
            "span_count" => self.span_count(&f)?,
            "rate_limiting" => {
                let rate = f
                    .number("spans_per_second")?
                    .ok_or_else(|| f.missing("spans_per_second"))?;
                let field = f.field("spans_per_second");
                let rate = self.whole(&name, &field, rate, 0.0, MAX_SPANS_PER_SECOND);
                #[allow(clippy::cast_precision_loss)]
                let rate = rate as f64;
                Policy::RateLimiting(RateLimit::new(rate))
            }
            "and" => {
                let subs = self.subs(&f, "and_sub_policy", depth, Place::Nested)?;
                if subs.is_empty() {
                    self.warn(
                        &name,
                        &f.field("and_sub_policy"),
                        "empty: the policy never samples".into(),
                    );
                }
                Policy::And(subs)
            }
            "drop" => {
                let mut subs = self.subs(&f, "drop_sub_policy", depth, Place::Nested)?;
                if subs.is_empty() {
                    self.warn(
                        &name,
                        &f.field("drop_sub_policy"),
                        "empty: the policy never drops".into(),
                    );
                }
                match subs.len() {
                    1 => Policy::Drop(Box::new(subs.remove(0))),
                    _ => Policy::Drop(Box::new(Policy::And(subs))),
                }
            }
            "composite" => self.composite(&f, depth)?,
            other => {
                return Err(outer.fail(format!(
                    "unknown policy type {other:?} (supported: {TYPES})"
                )));
            }
        })
    }

    fn no_invert(&mut self, f: &Fields<'_>) -> Result<(), PolicyConfigError> {
        if f.boolean("invert_match")? == Some(true) {
            return Err(f.fail(format!("{} is not supported", f.field("invert_match"))));
        }
        Ok(())
    }

    fn latency(&mut self, f: &Fields<'_>) -> Result<Policy, PolicyConfigError> {
        let threshold = f
            .number("threshold_ms")?
            .ok_or_else(|| f.missing("threshold_ms"))?;
        let threshold = self.clamp(
            f.policy,
            &f.field("threshold_ms"),
            threshold,
            0.0,
            MAX_LATENCY_MS,
        );
        let upper = match f.number("upper_threshold_ms")? {
            None => None,
            Some(upper) => {
                let upper = self.clamp(
                    f.policy,
                    &f.field("upper_threshold_ms"),
                    upper,
                    0.0,
                    MAX_LATENCY_MS,
                );
                (upper > 0.0).then_some(upper)
            }
        };
        if let Some(upper) = upper
            && upper < threshold
        {
            self.warn(
                f.policy,
                &f.field("upper_threshold_ms"),
                format!("{upper} is below threshold_ms {threshold}: the policy never samples"),
            );
        }
        Ok(Policy::Latency {
            threshold: millis(threshold),
            upper: upper.map(millis),
        })
    }

    fn span_count(&mut self, f: &Fields<'_>) -> Result<Policy, PolicyConfigError> {
        let min = match f.number("min_spans")? {
            Some(n) => self.whole(f.policy, &f.field("min_spans"), n, 0.0, MAX_SPAN_COUNT),
            None => 0,
        };
        let max = match f.number("max_spans")? {
            Some(n) => self.whole(f.policy, &f.field("max_spans"), n, 0.0, MAX_SPAN_COUNT),
            None => 0,
        };
        if max != 0 && max < min {
            self.warn(
                f.policy,
                &f.field("max_spans"),
                format!("{max} is below min_spans {min}: the policy never samples"),
            );
        }
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Policy::SpanCount {
            min: size(min),
            // 0 means no upper bound, as in the Collector.
            max: if max == 0 { usize::MAX } else { size(max) },
        })
    }

    fn subs(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        depth: usize,
        place: Place,
    ) -> Result<Vec<Policy>, PolicyConfigError> {
        f.array(key)?
            .ok_or_else(|| f.missing(key))?
            .iter()
            .enumerate()
            .map(|(i, p)| self.policy(p, format!("{}/#{i}", f.policy), depth + 1, place))
            .collect()
    }

    fn composite(&mut self, f: &Fields<'_>, depth: usize) -> Result<Policy, PolicyConfigError> {
        let name = f.policy;
        let total = f
            .number("max_total_spans_per_second")?
            .ok_or_else(|| f.missing("max_total_spans_per_second"))?;
        let total = self.whole(
            name,
            &f.field("max_total_spans_per_second"),
            total,
            0.0,
            MAX_SPANS_PER_SECOND,
        );
        let items = f
            .array("composite_sub_policy")?
            .ok_or_else(|| f.missing("composite_sub_policy"))?;
        let mut subs = Vec::with_capacity(items.len().min(MAX_POLICIES));
        for (i, item) in items.iter().enumerate() {
            let label = format!("{name}/#{i}");
            let sub_name = match item.get("name") {
                Some(Json::String(s)) if s.len() <= MAX_NAME_BYTES => s.clone(),
                _ => label.clone(),
            };
            let policy = self.policy(item, label, depth + 1, Place::InComposite)?;
            subs.push((sub_name, policy));
        }
        let field = f.field("composite_sub_policy");
        if subs.is_empty() {
            self.warn(name, &field, "empty: the policy never samples".into());
        }
        for (i, (sub, _)) in subs.iter().enumerate() {
            if subs[..i].iter().any(|(other, _)| other == sub) {
                self.warn(
                    name,
                    &field,
                    format!("two sub-policies are named {sub:?}; they share one rate allocation"),
                );
            }
        }
        let mut allocation = Vec::new();
        let allocation_field = f.field("rate_allocation");
        for item in f.list("rate_allocation")?.into_iter().flatten() {
            let entry =
                Fields {
                    policy: name,
                    prefix: &allocation_field,
                    map: Some(item.as_object().ok_or_else(|| {
                        f.wrong_type("rate_allocation", "a list of objects", item)
                    })?),
                };
            let policy = entry
                .string("policy", MAX_NAME_BYTES)?
                .ok_or_else(|| entry.missing("policy"))?;
            let percent = match entry.number("percent")? {
                Some(p) => self.whole(name, &entry.field("percent"), p, 0.0, 100.0),
                None => 0,
            };
            if !subs.iter().any(|(sub, _)| *sub == policy) {
                self.warn(
                    name,
                    &allocation_field,
                    format!("no sub-policy is named {policy:?}; ignored"),
                );
            }
            allocation.push(RateAllocation { policy, percent });
        }
        let sum: u64 = allocation.iter().map(|a| a.percent).sum();
        if sum > 100 {
            self.warn(
                name,
                &allocation_field,
                format!("the percents add up to {sum}, more than 100"),
            );
        }
        for (sub, _) in &subs {
            if !allocation.iter().any(|a| a.policy == *sub) {
                self.warn(
                    name,
                    &allocation_field,
                    format!(
                        "sub-policy {sub:?} has no allocation: 0 spans per second, it never \
                         samples (as in the Collector)"
                    ),
                );
            }
        }
        if let Some(order) = f.strings("policy_order", MAX_NAME_BYTES)? {
            let given: Vec<&str> = subs.iter().map(|(s, _)| s.as_str()).collect();
            if order.iter().map(String::as_str).ne(given.iter().copied()) {
                self.warn(
                    name,
                    &f.field("policy_order"),
                    "differs from the composite_sub_policy order; sub-policies are evaluated \
                     in composite_sub_policy order, as the Collector does"
                        .into(),
                );
            }
        }
        Ok(Policy::Composite(Composite::new(total, subs, &allocation)))
    }
}
