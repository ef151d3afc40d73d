//! Policies from a configuration file shaped like the OpenTelemetry
//! Collector's `tail_sampling` processor settings, written as JSON.

use std::time::Duration;

use serde_json::Value as Json;

use super::{Policy, RateLimit, StatusMatch, TailConfig};

/// A policy file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyConfigError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A policy is malformed or of an unknown type.
    #[error("policy {policy:?}: {reason}")]
    Policy {
        /// The policy's `name` (or its position).
        policy: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads `{"decision_wait_ms": …, "num_traces": …, "policies": […]}`, the
/// Collector's `tail_sampling` settings in JSON, into policies and the
/// stage's configuration (starting from `base`).
///
/// Policy types: `always_sample`, `latency` (`threshold_ms`,
/// `upper_threshold_ms`), `status_code` (`status_codes`), `probabilistic`
/// (`sampling_percentage`), `string_attribute` (`key`, `values`,
/// `invert_match`), `numeric_attribute` (`key`, `min_value`, `max_value`),
/// `boolean_attribute` (`key`, `value`), `span_count` (`min_spans`,
/// `max_spans`), `rate_limiting` (`spans_per_second`), `and`
/// (`and_sub_policy`) and `drop` (`drop_sub_policy`).
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
/// When the text is not JSON or a policy is malformed.
pub fn policies_from_json(
    text: &str,
    base: TailConfig,
) -> Result<(Vec<Policy>, TailConfig), PolicyConfigError> {
    let root: Json = serde_json::from_str(text)?;
    let mut config = base;
    if let Some(ms) = root.get("decision_wait_ms").and_then(Json::as_u64) {
        config.decision_wait = Duration::from_millis(ms);
    }
    if let Some(n) = root.get("num_traces").and_then(Json::as_u64) {
        config.max_traces = usize::try_from(n).unwrap_or(usize::MAX);
    }
    let list = root
        .get("policies")
        .and_then(Json::as_array)
        .ok_or_else(|| PolicyConfigError::Policy {
            policy: String::new(),
            reason: "expected a \"policies\" array".into(),
        })?;
    let policies = list
        .iter()
        .enumerate()
        .map(|(i, p)| policy(p, i))
        .collect::<Result<_, _>>()?;
    Ok((policies, config))
}

fn policy(p: &Json, index: usize) -> Result<Policy, PolicyConfigError> {
    let name = p
        .get("name")
        .and_then(Json::as_str)
        .map_or_else(|| format!("#{index}"), str::to_owned);
    let fail = |reason: &str| PolicyConfigError::Policy {
        policy: name.clone(),
        reason: reason.to_owned(),
    };
    let kind = p
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| fail("missing \"type\""))?;
    let body = p.get(kind).cloned().unwrap_or(Json::Null);
    let num = |key: &str| body.get(key).and_then(Json::as_f64);
    let string = |key: &str| body.get(key).and_then(Json::as_str).map(str::to_owned);
    let subs = |key: &str| -> Result<Vec<Policy>, PolicyConfigError> {
        body.get(key)
            .and_then(Json::as_array)
            .ok_or_else(|| fail(&format!("expected a \"{key}\" array")))?
            .iter()
            .enumerate()
            .map(|(i, p)| policy(p, i))
            .collect()
    };
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    Ok(match kind {
        "always_sample" => Policy::AlwaysSample,
        "latency" => Policy::Latency {
            threshold: ms(num("threshold_ms").ok_or_else(|| fail("latency needs threshold_ms"))?),
            upper: num("upper_threshold_ms").filter(|u| *u > 0.0).map(ms),
        },
        "status_code" => {
            let codes = body
                .get("status_codes")
                .and_then(Json::as_array)
                .ok_or_else(|| fail("status_code needs status_codes"))?
                .iter()
                .map(
                    |c| match c.as_str().map(str::to_ascii_uppercase).as_deref() {
                        Some("ERROR") => Ok(StatusMatch::Error),
                        Some("OK") => Ok(StatusMatch::Ok),
                        Some("UNSET") => Ok(StatusMatch::Unset),
                        _ => Err(fail("status codes are ERROR, OK or UNSET")),
                    },
                )
                .collect::<Result<_, _>>()?;
            Policy::StatusCode(codes)
        }
        "probabilistic" => Policy::Probabilistic(
            num("sampling_percentage")
                .ok_or_else(|| fail("probabilistic needs sampling_percentage"))?
                / 100.0,
        ),
        "string_attribute" => Policy::StringAttribute {
            key: string("key").ok_or_else(|| fail("string_attribute needs key"))?,
            values: body
                .get("values")
                .and_then(Json::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Json::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            invert: body
                .get("invert_match")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        },
        "numeric_attribute" => Policy::NumericAttribute {
            key: string("key").ok_or_else(|| fail("numeric_attribute needs key"))?,
            min: num("min_value").unwrap_or(f64::NEG_INFINITY),
            max: num("max_value").unwrap_or(f64::INFINITY),
        },
        "boolean_attribute" => Policy::BooleanAttribute {
            key: string("key").ok_or_else(|| fail("boolean_attribute needs key"))?,
            value: body
                .get("value")
                .and_then(Json::as_bool)
                .ok_or_else(|| fail("boolean_attribute needs value"))?,
        },
        "span_count" => Policy::SpanCount {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            min: num("min_spans").unwrap_or(0.0) as usize,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            max: num("max_spans").map_or(usize::MAX, |m| m as usize),
        },
        "rate_limiting" => Policy::RateLimiting(RateLimit::new(
            num("spans_per_second").ok_or_else(|| fail("rate_limiting needs spans_per_second"))?,
        )),
        "and" => Policy::And(subs("and_sub_policy")?),
        "drop" => {
            let mut inner = subs("drop_sub_policy")?;
            match inner.len() {
                1 => Policy::Drop(Box::new(inner.remove(0))),
                _ => Policy::Drop(Box::new(Policy::And(inner))),
            }
        }
        other => return Err(fail(&format!("unknown policy type {other:?}"))),
    })
}
