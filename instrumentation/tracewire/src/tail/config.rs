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

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};
use serde_path_to_error::Segment;

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
    let top = At::new("", "");
    if text.len() > MAX_FILE_BYTES {
        return Err(top.fail(format!(
            "the file has {} bytes, more than the {MAX_FILE_BYTES} read",
            text.len()
        )));
    }
    let root: Json = serde_json::from_str(text)?;
    let file: FileSettings = typed("", "", root)?;
    let mut parser = Parser::default();
    for key in file.other.keys() {
        match key.as_str() {
            "expected_new_traces_per_sec" => {}
            "decision_wait" => parser.warn(
                &top,
                key,
                "not read (a Collector duration string); write decision_wait_ms",
            ),
            _ => parser.warn(&top, key, "unknown field, ignored"),
        }
    }
    let mut config = base;
    if let Some(ms) = file.decision_wait_ms {
        let ms = parser.clamp(&top, "decision_wait_ms", ms, 0.0, MAX_DECISION_WAIT_MS);
        config.decision_wait = millis(ms);
        if config.decision_wait > config.trace_timeout {
            parser.warn(
                &top,
                "decision_wait_ms",
                format!(
                    "longer than trace_timeout ({} ms): traces whose root never ends here are \
                     decided at the timeout",
                    config.trace_timeout.as_millis()
                ),
            );
        }
    }
    if let Some(n) = file.num_traces {
        let n = parser.whole(&top, "num_traces", n, 1.0, MAX_NUM_TRACES);
        config.max_traces = usize::try_from(n).unwrap_or(usize::MAX);
    }
    let policies = file
        .policies
        .ok_or_else(|| top.fail("expected a \"policies\" array".into()))?
        .into_iter()
        .enumerate()
        .map(|(i, p)| parser.policy(p, format!("#{i}"), 1, "").map(|(_, p)| p))
        .collect::<Result<_, _>>()?;
    Ok(PolicyFile {
        policies,
        config,
        warnings: parser.warnings,
    })
}

/// The file: `{"decision_wait_ms", "num_traces", "policies"}`.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct FileSettings {
    decision_wait_ms: Option<f64>,
    num_traces: Option<f64>,
    policies: Option<Vec<Json>>,
    /// Ignored, with a warning (but for `expected_new_traces_per_sec`).
    #[serde(flatten)]
    other: Map<String, Json>,
}

/// A policy: `{"name", "type", "<type>": {…}}`, read in steps: its name
/// first, to name it in errors about the rest.
#[derive(Deserialize)]
#[serde(expecting = "a policy object")]
struct PolicyName {
    name: Option<Name>,
    #[serde(flatten)]
    other: Map<String, Json>,
}

/// The rest of a policy: its type, then its settings under the type's name.
#[derive(Deserialize)]
struct PolicyType {
    #[serde(rename = "type")]
    kind: Option<Name>,
    #[serde(flatten)]
    other: Map<String, Json>,
}

/// Declares [`Settings`], read from `{"<type>": {…}}` (an unknown type is
/// an error), and the settings of each type: every field is optional
/// (`null` counts as absent) and the unknown ones are kept, to warn about
/// them (`flatten` also makes the struct read from JSON objects only, not
/// arrays).
macro_rules! settings {
    ($($kind:ident($name:ident) { $($(#[$attr:meta])* $field:ident: $ty:ty),* $(,)? })*) => {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Settings {
            $($kind($name),)*
        }

        impl Settings {
            fn unknown(&self) -> &Map<String, Json> {
                match self {
                    $(Self::$kind(s) => &s.unknown,)*
                }
            }
        }

        $(
            #[derive(Deserialize)]
            #[serde(expecting = "an object")]
            struct $name {
                $($(#[$attr])* $field: Option<$ty>,)*
                #[serde(flatten)]
                unknown: Map<String, Json>,
            }
        )*
    };
}

settings! {
    AlwaysSample(NoSettings) {}
    Latency(LatencySettings) { threshold_ms: f64, upper_threshold_ms: f64 }
    StatusCode(StatusCodeSettings) { status_codes: List<Status> }
    Probabilistic(ProbabilisticSettings) { sampling_percentage: f64, hash_salt: Text }
    StringAttribute(StringAttributeSettings) {
        key: Name,
        values: List<Text>,
        invert_match: bool,
        enabled_regex_matching: bool,
        /// Read for its type only: there is no regex cache here.
        #[serde(rename = "cache_max_size")]
        _cache_max_size: f64,
    }
    NumericAttribute(NumericAttributeSettings) {
        key: Name,
        min_value: f64,
        max_value: f64,
        invert_match: bool,
    }
    BooleanAttribute(BooleanAttributeSettings) { key: Name, value: bool, invert_match: bool }
    SpanCount(SpanCountSettings) { min_spans: f64, max_spans: f64 }
    RateLimiting(RateLimitingSettings) { spans_per_second: f64 }
    And(AndSettings) { and_sub_policy: Vec<Json> }
    Drop(DropSettings) { drop_sub_policy: Vec<Json> }
    Composite(CompositeSettings) {
        max_total_spans_per_second: f64,
        policy_order: List<Name>,
        composite_sub_policy: Vec<Json>,
        rate_allocation: List<AllocationSettings>,
    }
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct AllocationSettings {
    policy: Option<Name>,
    percent: Option<f64>,
    /// Ignored, without a warning.
    #[serde(flatten)]
    _other: Map<String, Json>,
}

/// A string of at most `MAX` bytes (by default an attribute value or
/// `hash_salt`).
#[derive(Default, Deserialize)]
#[serde(try_from = "String")]
struct Text<const MAX: usize = MAX_VALUE_BYTES>(String);

/// A policy name, type, attribute key or `rate_allocation` name.
type Name = Text<MAX_NAME_BYTES>;

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s.len() > MAX {
            return Err(format!("{} bytes, more than {MAX}", s.len()));
        }
        Ok(Self(s))
    }
}

/// A status code: `ERROR`, `OK` or `UNSET`, in any case.
#[derive(Deserialize)]
#[serde(try_from = "Name")]
struct Status(StatusMatch);

impl TryFrom<Name> for Status {
    type Error = String;

    fn try_from(Text(code): Name) -> Result<Self, String> {
        Ok(Self(match code.to_ascii_uppercase().as_str() {
            "ERROR" => StatusMatch::Error,
            "OK" => StatusMatch::Ok,
            "UNSET" => StatusMatch::Unset,
            _ => return Err(format!("{code:?} is not ERROR, OK or UNSET")),
        }))
    }
}

/// A list of at most [`MAX_LIST_ITEMS`] items.
#[derive(Default, Deserialize)]
#[serde(try_from = "Vec<T>")]
struct List<T>(Vec<T>);

impl<T> TryFrom<Vec<T>> for List<T> {
    type Error = String;

    fn try_from(items: Vec<T>) -> Result<Self, String> {
        if items.len() > MAX_LIST_ITEMS {
            return Err(format!("{} items, more than {MAX_LIST_ITEMS}", items.len()));
        }
        Ok(Self(items))
    }
}

/// `value` read as a `T`; an error names the policy and the field (`root`
/// for the value itself), e.g. `latency.threshold_ms: invalid type: string
/// "2s", expected f64`.
fn typed<T: DeserializeOwned>(
    policy: &str,
    root: &str,
    value: Json,
) -> Result<T, PolicyConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        // Keys only: `rate_allocation[2].percent` is `rate_allocation.percent`.
        let keys = e.path().iter().filter_map(|segment| match segment {
            Segment::Map { key } | Segment::Enum { variant: key } => Some(key.as_str()),
            _ => None,
        });
        let field = match keys.collect::<Vec<_>>().join(".") {
            keys if keys.is_empty() => root.to_owned(),
            keys => keys,
        };
        let reason = if field.is_empty() {
            e.inner().to_string()
        } else {
            format!("{field}: {}", e.inner())
        };
        At::new(policy, "").fail(reason)
    })
}

/// A duration of `ms` milliseconds, `ms` already clamped to a finite
/// non-negative range.
fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::ZERO)
}

fn unnamed(subs: Vec<(String, Policy)>) -> Vec<Policy> {
    subs.into_iter().map(|(_, policy)| policy).collect()
}

/// A policy (empty for the file's own settings) and its type, prefixed to
/// field names in messages.
struct At<'a> {
    policy: &'a str,
    kind: &'a str,
}

impl<'a> At<'a> {
    fn new(policy: &'a str, kind: &'a str) -> Self {
        Self { policy, kind }
    }

    fn field(&self, key: &str) -> String {
        if self.kind.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.kind)
        }
    }

    fn fail(&self, reason: String) -> PolicyConfigError {
        PolicyConfigError::Policy {
            policy: self.policy.to_owned(),
            reason,
        }
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, PolicyConfigError> {
        value.ok_or_else(|| self.fail(format!("{} is required", self.field(key))))
    }

    fn no_invert(&self, invert: Option<bool>) -> Result<(), PolicyConfigError> {
        if invert == Some(true) {
            return Err(self.fail(format!("{} is not supported", self.field("invert_match"))));
        }
        Ok(())
    }
}

#[derive(Default)]
struct Parser {
    warnings: Vec<PolicyWarning>,
    count: usize,
}

impl Parser {
    fn warn(&mut self, at: &At<'_>, key: &str, message: impl Into<String>) {
        self.warnings.push(PolicyWarning {
            policy: at.policy.to_owned(),
            field: at.field(key),
            message: message.into(),
        });
    }

    /// `value` within `[min, max]`, with a warning when it was not.
    fn clamp(&mut self, at: &At<'_>, key: &str, value: f64, min: f64, max: f64) -> f64 {
        let clamped = if value.is_nan() {
            min
        } else {
            value.clamp(min, max)
        };
        if clamped != value || value.is_nan() {
            self.warn(
                at,
                key,
                format!("{value} is outside {min} ..= {max}; using {clamped}"),
            );
        }
        clamped
    }

    /// A whole number within `[min, max]` (`min` ≥ 0), with a warning when
    /// `value` was not.
    fn whole(&mut self, at: &At<'_>, key: &str, value: f64, min: f64, max: f64) -> u64 {
        let clamped = self.clamp(at, key, value, min, max);
        let whole = clamped.trunc();
        if whole != clamped {
            self.warn(
                at,
                key,
                format!("{clamped} is not a whole number; using {whole}"),
            );
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = whole as u64;
        whole
    }

    /// A policy and its name (`label` when it has none), in a policy of
    /// type `parent` (none at the top).
    fn policy(
        &mut self,
        value: Json,
        label: String,
        depth: usize,
        parent: &str,
    ) -> Result<(String, Policy), PolicyConfigError> {
        let p: PolicyName = typed(&label, "", value)?;
        self.count += 1;
        if self.count > MAX_POLICIES {
            let reason = format!("more than {MAX_POLICIES} policies (counting nested ones)");
            return Err(At::new("", "").fail(reason));
        }
        let name = p.name.map_or(label, |name| name.0);
        let outer = At::new(&name, "");
        if depth > MAX_DEPTH {
            return Err(outer.fail(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        let PolicyType { kind, mut other } = typed(&name, "", Json::Object(p.other))?;
        let kind = outer.required("type", kind)?.0;
        let settings = match other.remove(&kind) {
            None | Some(Json::Null) => Json::Object(Map::new()),
            Some(settings) => settings,
        };
        for key in other.keys() {
            self.warn(&outer, key, format!("ignored: the policy's type is {kind}"));
        }
        let misplaced = match (kind.as_str(), parent) {
            ("composite", "") => "",
            ("composite", _) => "composite is only allowed as a top-level policy",
            ("drop", "composite") => "drop is not allowed inside composite",
            _ => "",
        };
        if !misplaced.is_empty() {
            return Err(outer.fail(format!("{misplaced} (as in the Collector)")));
        }
        let settings: Settings = typed(
            &name,
            "type",
            Json::Object(Map::from_iter([(kind.clone(), settings)])),
        )?;
        let at = At::new(&name, &kind);
        for key in settings.unknown().keys() {
            self.warn(&at, key, "unknown field, ignored");
        }
        let policy = self.settings(&at, settings, depth)?;
        Ok((name, policy))
    }

    fn settings(
        &mut self,
        at: &At<'_>,
        settings: Settings,
        depth: usize,
    ) -> Result<Policy, PolicyConfigError> {
        Ok(match settings {
            Settings::AlwaysSample(_) => Policy::AlwaysSample,
            Settings::Latency(s) => self.latency(at, &s)?,
            Settings::StatusCode(s) => {
                let mut matches = Vec::new();
                for Status(code) in at.required("status_codes", s.status_codes)?.0 {
                    if !matches.contains(&code) {
                        matches.push(code);
                    }
                }
                Policy::StatusCode(matches)
            }
            Settings::Probabilistic(s) => {
                let percentage = at.required("sampling_percentage", s.sampling_percentage)?;
                let percentage = self.clamp(at, "sampling_percentage", percentage, 0.0, 100.0);
                let salt = s.hash_salt.unwrap_or_default().0;
                Policy::SaltedProbabilistic(Probabilistic::new(percentage, salt))
            }
            Settings::StringAttribute(s) => {
                if s.enabled_regex_matching == Some(true) {
                    return Err(at.fail(
                        "string_attribute.enabled_regex_matching is not supported (values match \
                         exactly)"
                            .into(),
                    ));
                }
                Policy::StringAttribute {
                    key: at.required("key", s.key)?.0,
                    values: s
                        .values
                        .unwrap_or_default()
                        .0
                        .into_iter()
                        .map(|v| v.0)
                        .collect(),
                    invert: s.invert_match.unwrap_or(false),
                }
            }
            Settings::NumericAttribute(s) => {
                at.no_invert(s.invert_match)?;
                let min = s.min_value.unwrap_or(f64::NEG_INFINITY);
                let max = s.max_value.unwrap_or(f64::INFINITY);
                if min > max {
                    self.warn(
                        at,
                        "max_value",
                        format!("{max} is below min_value {min}: the policy never samples"),
                    );
                }
                Policy::NumericAttribute {
                    key: at.required("key", s.key)?.0,
                    min,
                    max,
                }
            }
            Settings::BooleanAttribute(s) => {
                at.no_invert(s.invert_match)?;
                Policy::BooleanAttribute {
                    key: at.required("key", s.key)?.0,
                    value: at.required("value", s.value)?,
                }
            }
            Settings::SpanCount(s) => self.span_count(at, &s),
            Settings::RateLimiting(s) => {
                let rate = at.required("spans_per_second", s.spans_per_second)?;
                let rate = self.whole(at, "spans_per_second", rate, 0.0, MAX_SPANS_PER_SECOND);
                #[allow(clippy::cast_precision_loss)]
                let rate = rate as f64;
                Policy::RateLimiting(RateLimit::new(rate))
            }
            Settings::And(s) => Policy::And(unnamed(self.subs(at, s.and_sub_policy, depth)?)),
            Settings::Drop(s) => {
                let mut subs = unnamed(self.subs(at, s.drop_sub_policy, depth)?);
                Policy::Drop(Box::new(if subs.len() == 1 {
                    subs.remove(0)
                } else {
                    Policy::And(subs)
                }))
            }
            Settings::Composite(s) => self.composite(at, s, depth)?,
        })
    }

    fn latency(&mut self, at: &At<'_>, s: &LatencySettings) -> Result<Policy, PolicyConfigError> {
        let threshold = at.required("threshold_ms", s.threshold_ms)?;
        let threshold = self.clamp(at, "threshold_ms", threshold, 0.0, MAX_LATENCY_MS);
        let upper = s
            .upper_threshold_ms
            .map(|upper| self.clamp(at, "upper_threshold_ms", upper, 0.0, MAX_LATENCY_MS))
            .filter(|upper| *upper > 0.0);
        if let Some(upper) = upper
            && upper < threshold
        {
            self.warn(
                at,
                "upper_threshold_ms",
                format!("{upper} is below threshold_ms {threshold}: the policy never samples"),
            );
        }
        Ok(Policy::Latency {
            threshold: millis(threshold),
            upper: upper.map(millis),
        })
    }

    fn span_count(&mut self, at: &At<'_>, s: &SpanCountSettings) -> Policy {
        let mut count =
            |key, n: Option<f64>| n.map_or(0, |n| self.whole(at, key, n, 0.0, MAX_SPAN_COUNT));
        let min = count("min_spans", s.min_spans);
        let max = count("max_spans", s.max_spans);
        if max != 0 && max < min {
            self.warn(
                at,
                "max_spans",
                format!("{max} is below min_spans {min}: the policy never samples"),
            );
        }
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Policy::SpanCount {
            min: size(min),
            // 0 means no upper bound, as in the Collector.
            max: if max == 0 { usize::MAX } else { size(max) },
        }
    }

    /// The `<type>_sub_policy` list of `and`, `drop` or `composite`, named.
    fn subs(
        &mut self,
        at: &At<'_>,
        items: Option<Vec<Json>>,
        depth: usize,
    ) -> Result<Vec<(String, Policy)>, PolicyConfigError> {
        let key = format!("{}_sub_policy", at.kind);
        let subs = at
            .required(&key, items)?
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.policy(p, format!("{}/#{i}", at.policy), depth + 1, at.kind))
            .collect::<Result<Vec<_>, _>>()?;
        if subs.is_empty() {
            let never = if at.kind == "drop" {
                "drops"
            } else {
                "samples"
            };
            self.warn(at, &key, format!("empty: the policy never {never}"));
        }
        Ok(subs)
    }

    fn composite(
        &mut self,
        at: &At<'_>,
        s: CompositeSettings,
        depth: usize,
    ) -> Result<Policy, PolicyConfigError> {
        let total = at.required("max_total_spans_per_second", s.max_total_spans_per_second)?;
        let total = self.whole(
            at,
            "max_total_spans_per_second",
            total,
            0.0,
            MAX_SPANS_PER_SECOND,
        );
        let subs = self.subs(at, s.composite_sub_policy, depth)?;
        for (i, (sub, _)) in subs.iter().enumerate() {
            if subs[..i].iter().any(|(other, _)| other == sub) {
                self.warn(
                    at,
                    "composite_sub_policy",
                    format!("two sub-policies are named {sub:?}; they share one rate allocation"),
                );
            }
        }
        let mut allocation = Vec::new();
        for entry in s.rate_allocation.map(|list| list.0).unwrap_or_default() {
            let policy = at.required("rate_allocation.policy", entry.policy)?.0;
            let percent = entry.percent.map_or(0, |p| {
                self.whole(at, "rate_allocation.percent", p, 0.0, 100.0)
            });
            if !subs.iter().any(|(sub, _)| *sub == policy) {
                self.warn(
                    at,
                    "rate_allocation",
                    format!("no sub-policy is named {policy:?}; ignored"),
                );
            }
            allocation.push(RateAllocation { policy, percent });
        }
        let sum: u64 = allocation.iter().map(|a| a.percent).sum();
        if sum > 100 {
            self.warn(
                at,
                "rate_allocation",
                format!("the percents add up to {sum}, more than 100"),
            );
        }
        for (sub, _) in &subs {
            if !allocation.iter().any(|a| a.policy == *sub) {
                self.warn(
                    at,
                    "rate_allocation",
                    format!(
                        "sub-policy {sub:?} has no allocation: 0 spans per second, it never \
                         samples (as in the Collector)"
                    ),
                );
            }
        }
        if let Some(List(order)) = s.policy_order
            && order
                .iter()
                .map(|name| name.0.as_str())
                .ne(subs.iter().map(|(sub, _)| sub.as_str()))
        {
            self.warn(
                at,
                "policy_order",
                "differs from the composite_sub_policy order; sub-policies are evaluated in \
                 composite_sub_policy order, as the Collector does",
            );
        }
        Ok(Policy::Composite(Composite::new(total, subs, &allocation)))
    }
}
