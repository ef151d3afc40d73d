//! The `--json` output of every command, for scripts.
//!
//! Field names are stable. Durations and offsets are integer nanoseconds
//! (`*_ns`), times are RFC 3339 UTC strings with nanoseconds, ids are
//! lowercase hex, shares and relative changes are fractions (`0.4` is
//! 40%). The README of the crate lists every field.

use serde_json::{Map, Value as Json, json};
use tracewire::{Array, SpanKind, Status, Value};

use crate::critical_path::CriticalPath;
use crate::diff::{KeyPart, Matched, SpanKey, TraceDiff, Unmatched};
use crate::load::Traces;
use crate::model::Trace;
use crate::render::format_rfc3339;

/// `tracewire list --json`: `{"traces": [summary, …]}`, earliest first.
pub fn list(traces: &Traces) -> Json {
    json!({ "traces": traces.iter().map(summary).collect::<Vec<_>>() })
}

/// One trace's summary: id, start, duration, counts, services and root.
pub fn summary(trace: &Trace) -> Json {
    let root = trace.root();
    let r = trace.span(root);
    json!({
        "trace_id": trace.id().to_string(),
        "start": format_rfc3339(trace.start_unix_nano()),
        "duration_ns": trace.duration_nanos(),
        "span_count": trace.spans().len(),
        "error_count": trace.error_count(),
        "orphan_count": trace.orphan_count(),
        "services": trace.services(),
        "root": {
            "span_id": r.span_id.to_string(),
            "service": r.service,
            "name": r.name,
            "duration_ns": r.duration_nanos(),
            "orphan": trace.is_orphan(root),
        },
    })
}

/// `tracewire view --json`: the summary plus `spans` in tree order, each
/// with its depth, offset, duration, status, critical-path self-time and
/// attributes.
pub fn view(trace: &Trace) -> Json {
    let path = crate::critical_path(trace);
    let bottleneck = path.bottleneck().span;
    let start = trace.start_unix_nano();
    let spans: Vec<Json> = trace
        .tree_order()
        .iter()
        .map(|&(i, depth)| {
            let s = trace.span(i);
            let skew = trace.parent(i).map_or(0, |p| {
                trace
                    .span(p)
                    .start_unix_nano
                    .saturating_sub(s.start_unix_nano)
            });
            let attributes: Map<String, Json> = s
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), value(&kv.value)))
                .collect();
            json!({
                "span_id": s.span_id.to_string(),
                "parent_span_id": s.parent_span_id.map(|p| p.to_string()),
                "service": s.service,
                "name": s.name,
                "kind": kind(s.kind),
                "depth": depth,
                "start": format_rfc3339(s.start_unix_nano),
                "start_offset_ns": s.start_unix_nano - start,
                "duration_ns": s.duration_nanos(),
                "status": status(&s.status),
                "error_message": s.error_message(),
                "orphan": trace.is_orphan(i),
                "clock_skew_ns": skew,
                "critical_path_self_ns": path.step(i).map(|step| step.self_nanos),
                "bottleneck": i == bottleneck,
                "attributes": attributes,
            })
        })
        .collect();
    let mut out = summary(trace);
    out["spans"] = Json::Array(spans);
    out
}

/// `tracewire critical-path --json`: the total, the bottleneck, the `path`
/// (spans in tree order with self-time and share) and the `sections` in
/// time order (offsets from the root's start). A path computed for another
/// trace is recomputed for `trace`.
pub fn critical_path(trace: &Trace, path: &CriticalPath) -> Json {
    let recomputed;
    let path = if path.is_for(trace) {
        path
    } else {
        recomputed = crate::critical_path(trace);
        &recomputed
    };
    let root_start = trace.span(path.root()).start_unix_nano;
    let b = path.bottleneck();
    let bs = trace.span(b.span);
    let steps: Vec<Json> = path
        .steps()
        .iter()
        .map(|step| {
            let s = trace.span(step.span);
            json!({
                "span_id": s.span_id.to_string(),
                "service": s.service,
                "name": s.name,
                "depth": step.depth,
                "duration_ns": s.duration_nanos(),
                "self_ns": step.self_nanos,
                "share": path.share(step),
                "bottleneck": step.span == b.span,
                "error": s.is_error(),
            })
        })
        .collect();
    let sections: Vec<Json> = path
        .sections()
        .iter()
        .map(|section| {
            let s = trace.span(section.span);
            json!({
                "span_id": s.span_id.to_string(),
                "service": s.service,
                "name": s.name,
                "start_offset_ns": section.start_unix_nano.saturating_sub(root_start),
                "end_offset_ns": section.end_unix_nano.saturating_sub(root_start),
            })
        })
        .collect();
    json!({
        "trace_id": trace.id().to_string(),
        "root_span_id": trace.span(path.root()).span_id.to_string(),
        "total_ns": path.total_nanos(),
        "bottleneck": {
            "span_id": bs.span_id.to_string(),
            "service": bs.service,
            "name": bs.name,
            "self_ns": b.self_nanos,
            "share": path.share(b),
        },
        "path": steps,
        "sections": sections,
    })
}

/// `tracewire diff --json`: both traces, totals, then `slower`, `faster`
/// (changes of at least `min_delta_nanos`), `missing` and `new`.
pub fn diff(diff: &TraceDiff, min_delta_nanos: u64) -> Json {
    let slower: Vec<Json> = diff.slower(min_delta_nanos).map(matched).collect();
    let faster: Vec<Json> = diff.faster(min_delta_nanos).map(matched).collect();
    json!({
        "a": {
            "trace_id": diff.a_trace_id.to_string(),
            "duration_ns": diff.a_duration_nanos,
            "span_count": diff.a_span_count,
        },
        "b": {
            "trace_id": diff.b_trace_id.to_string(),
            "duration_ns": diff.b_duration_nanos,
            "span_count": diff.b_span_count,
        },
        "duration_delta_ns": diff.duration_delta_nanos(),
        "min_delta_ns": min_delta_nanos,
        "totals": {
            "matched": diff.matched.len(),
            "slower": slower.len(),
            "faster": faster.len(),
            "unchanged": diff.matched.len() - slower.len() - faster.len(),
            "missing": diff.missing.len(),
            "new": diff.new.len(),
        },
        "slower": slower,
        "faster": faster,
        "missing": diff.missing.iter().map(unmatched).collect::<Vec<_>>(),
        "new": diff.new.iter().map(unmatched).collect::<Vec<_>>(),
    })
}

fn key(key: &SpanKey) -> Map<String, Json> {
    let mut out = part(key.part());
    out.insert(
        "ancestors".into(),
        Json::Array(
            key.ancestors()
                .into_iter()
                .map(|p| Json::Object(part(p)))
                .collect(),
        ),
    );
    out.insert("path".into(), Json::String(key.to_string()));
    out
}

fn part(part: &KeyPart) -> Map<String, Json> {
    let mut out = Map::new();
    out.insert("service".into(), json!(part.service));
    out.insert("name".into(), json!(part.name));
    out.insert("occurrence".into(), json!(part.occurrence));
    out
}

fn matched(m: &Matched) -> Json {
    let mut out = key(&m.key);
    for (k, v) in [
        ("a_span_id", json!(m.a_span_id.to_string())),
        ("b_span_id", json!(m.b_span_id.to_string())),
        ("a_duration_ns", json!(m.a_duration_nanos)),
        ("b_duration_ns", json!(m.b_duration_nanos)),
        ("delta_ns", json!(m.delta_nanos())),
        ("relative", json!(m.relative())),
        ("a_error", json!(m.a_error)),
        ("b_error", json!(m.b_error)),
    ] {
        out.insert(k.into(), v);
    }
    Json::Object(out)
}

fn unmatched(u: &Unmatched) -> Json {
    let mut out = key(&u.key);
    out.insert("span_id".into(), json!(u.span_id.to_string()));
    out.insert("duration_ns".into(), json!(u.duration_nanos));
    out.insert("error".into(), json!(u.error));
    Json::Object(out)
}

fn kind(kind: SpanKind) -> &'static str {
    kind.as_str()
}

fn status(status: &Status) -> &'static str {
    match status {
        Status::Unset => "unset",
        Status::Ok => "ok",
        Status::Error { .. } => "error",
    }
}

fn value(value: &Value) -> Json {
    match value {
        Value::Bool(b) => json!(b),
        Value::I64(i) => json!(i),
        Value::F64(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| json!(f.to_string()), Json::Number)
        }
        Value::String(s) => json!(s),
        Value::Array(a) => array(a),
    }
}

fn array(array: &Array) -> Json {
    match array {
        Array::Bool(v) => json!(v),
        Array::I64(v) => json!(v),
        Array::F64(v) => Json::Array(v.iter().map(|f| value(&Value::F64(*f))).collect()),
        Array::String(v) => json!(v),
    }
}
