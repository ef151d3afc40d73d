use std::time::Duration;

use tracewire::sampling::{AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio};
use tracewire::{
    Baggage, Context, SetParentError, SpanContext, SpanExt, SpanId, SpanKind, Status, TraceFlags,
    TraceId, TraceState, Value, with_remote_parent,
};
use tracing::{Level, info_span, span};

use crate::support::{traced, traced_with};
use tracewire::TracewireLayer;
use tracewire::testing::InMemoryExporter;
use tracing_subscriber::prelude::*;

fn remote(sampled: bool) -> Context {
    Context::from_span_context(SpanContext::new(
        TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from_u64(0x00f0_67aa_0ba9_02b7),
        TraceFlags::from_bits(0x02 | u8::from(sampled) | 0x80),
        true,
        TraceState::from_header("congo=t61rcWkgMzE").unwrap(),
    ))
}

#[test]
fn children_share_the_trace_and_point_to_their_parent() {
    let (exporter, ()) = traced(|| {
        let root = info_span!("root");
        let _g = root.enter();
        info_span!("child").in_scope(|| {
            info_span!("grandchild").in_scope(|| {});
        });
        info_span!("sibling").in_scope(|| {});
    });
    assert_eq!(
        exporter.tree(),
        "root\n  child\n    grandchild\n  sibling\n"
    );
    let root = exporter.span("root");
    let child = exporter.span("child");
    let grandchild = exporter.span("grandchild");
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    assert!(root.is_local_root());
    assert_eq!(child.parent_span_id, root.span_context.span_id());
    assert_eq!(grandchild.parent_span_id, child.span_context.span_id());
    let trace = root.span_context.trace_id();
    assert!(
        exporter
            .spans()
            .iter()
            .all(|s| s.span_context.trace_id() == trace)
    );
    // New traces carry the random flag and are sampled.
    assert_eq!(
        root.span_context.flags(),
        TraceFlags::SAMPLED | TraceFlags::RANDOM
    );
    assert_ne!(child.span_context.span_id(), root.span_context.span_id());
}

#[test]
fn separate_roots_start_separate_traces() {
    let (exporter, ()) = traced(|| {
        info_span!("a").in_scope(|| {});
        info_span!("b").in_scope(|| {});
    });
    assert_ne!(
        exporter.span("a").span_context.trace_id(),
        exporter.span("b").span_context.trace_id()
    );
}

#[test]
fn explicit_parent_and_explicit_root_are_honoured() {
    let (exporter, ()) = traced(|| {
        let a = info_span!("a");
        let b = info_span!("b");
        let _in_b = b.enter();
        info_span!(parent: &a, "under_a").in_scope(|| {});
        info_span!(parent: None, "new_root").in_scope(|| {});
    });
    let a = exporter.span("a");
    let under_a = exporter.span("under_a");
    assert_eq!(under_a.parent_span_id, a.span_context.span_id());
    let new_root = exporter.span("new_root");
    assert!(!new_root.parent_span_id.is_valid());
    assert_ne!(
        new_root.span_context.trace_id(),
        exporter.span("b").span_context.trace_id()
    );
}

#[test]
fn remote_parent_continues_the_callers_trace() {
    let cx = remote(true);
    let (exporter, ()) = traced(|| {
        let _unrelated = info_span!("connection").entered();
        let server =
            with_remote_parent(&cx, || info_span!("GET /users/{id}", otel.kind = "server"));
        server.in_scope(|| info_span!("db").in_scope(|| {}));
    });
    let server = exporter.span("GET /users/{id}");
    let remote = cx.span_context().unwrap();
    assert_eq!(server.span_context.trace_id(), remote.trace_id());
    assert_eq!(server.parent_span_id, remote.span_id());
    assert!(server.parent_is_remote && server.is_local_root());
    assert_eq!(server.kind, SpanKind::Server);
    // Unknown flag bits are cleared, the random bit is kept as received.
    assert_eq!(server.span_context.flags().bits(), 0x03);
    assert_eq!(
        server.span_context.trace_state().get("congo"),
        Some("t61rcWkgMzE")
    );
    let db = exporter.span("db");
    assert_eq!(db.parent_span_id, server.span_context.span_id());
    assert!(!db.parent_is_remote);
}

#[test]
fn remote_parent_without_random_flag_keeps_it_unset() {
    let cx = Context::from_span_context(SpanContext::new(
        TraceId::from_u128(9),
        SpanId::from_u64(9),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    let (exporter, ()) = traced(|| with_remote_parent(&cx, || info_span!("s")).in_scope(|| {}));
    assert_eq!(exporter.span("s").span_context.flags(), TraceFlags::SAMPLED);
}

#[test]
fn sampling_hint_without_ids_decides_the_new_trace() {
    let (exporter, ()) = traced(|| {
        let deny = Context::new().with_sampling_hint(false);
        with_remote_parent(&deny, || info_span!("denied"))
            .in_scope(|| info_span!("child").in_scope(|| {}));
        let accept = Context::new().with_sampling_hint(true);
        with_remote_parent(&accept, || info_span!("accepted")).in_scope(|| {});
    });
    assert!(exporter.find("denied").is_none() && exporter.find("child").is_none());
    let accepted = exporter.span("accepted");
    assert!(accepted.span_context.is_sampled() && !accepted.parent_span_id.is_valid());
}

#[test]
fn empty_remote_context_starts_a_new_trace() {
    let (exporter, ()) = traced(|| {
        let outer = info_span!("outer");
        let _g = outer.enter();
        let server = with_remote_parent(&Context::new(), || info_span!("server"));
        server.in_scope(|| {});
    });
    let server = exporter.span("server");
    assert!(!server.parent_span_id.is_valid());
    assert_ne!(
        server.span_context.trace_id(),
        exporter.span("outer").span_context.trace_id()
    );
}

#[test]
fn remote_parent_applies_only_to_spans_made_directly_in_the_closure() {
    let cx = remote(true);
    let (exporter, ()) = traced(|| {
        with_remote_parent(&cx, || {
            let first = info_span!("first");
            let _g = first.enter();
            info_span!("nested").in_scope(|| {});
        });
    });
    let first = exporter.span("first");
    assert_eq!(
        exporter.span("nested").parent_span_id,
        first.span_context.span_id()
    );
}

#[test]
fn baggage_travels_from_the_remote_context_to_descendants() {
    let cx = remote(true).with_baggage(Baggage::new().insert("tenant", "acme").unwrap());
    let (_, seen) = traced(|| {
        let server = with_remote_parent(&cx, || info_span!("server"));
        server.in_scope(|| info_span!("child").in_scope(tracewire::current_context))
    });
    assert_eq!(seen.baggage().get("tenant"), Some("acme"));
    assert_eq!(
        seen.span_context().unwrap().trace_id(),
        cx.span_context().unwrap().trace_id()
    );
}

#[test]
fn unsampled_remote_parent_is_followed_and_nothing_is_exported() {
    let cx = remote(false);
    let (exporter, inner) = traced(|| {
        let server = with_remote_parent(&cx, || info_span!("server", a = 1));
        server.in_scope(|| {
            tracing::info!("not recorded");
            info_span!("child").in_scope(tracewire::current_span_context)
        })
    });
    assert!(exporter.is_empty());
    // Unsampled spans still have ids, in the caller's trace.
    let inner = inner.unwrap();
    assert_eq!(inner.trace_id(), cx.span_context().unwrap().trace_id());
    assert!(!inner.is_sampled());
    assert!(inner.span_id().is_valid());
}

#[test]
fn children_inherit_the_root_decision() {
    let (exporter, ids) = traced_with(ParentBased::new(AlwaysOff), || {
        info_span!("root")
            .in_scope(|| info_span!("child").in_scope(tracewire::current_span_context))
    });
    assert!(exporter.is_empty());
    let child = ids.unwrap();
    assert!(!child.is_sampled() && child.flags().is_random());

    // A sampled remote parent overrides an always-off root sampler.
    let cx = remote(true);
    let (exporter, ()) = traced_with(ParentBased::new(AlwaysOff), || {
        with_remote_parent(&cx, || info_span!("server")).in_scope(|| {});
    });
    assert_eq!(exporter.len(), 1);
}

#[test]
fn trace_id_ratio_decides_consistently_per_trace() {
    let (exporter, ()) = traced_with(ParentBased::new(TraceIdRatio::new(0.5)), || {
        for _ in 0..400 {
            info_span!("root").in_scope(|| info_span!("child").in_scope(|| {}));
        }
    });
    let roots = exporter.spans_named("root");
    let children = exporter.spans_named("child");
    assert_eq!(roots.len(), children.len());
    assert!((120..280).contains(&roots.len()), "{}", roots.len());
    for root in &roots {
        assert!(TraceIdRatio::new(0.5).samples(root.span_context.trace_id()));
    }
}

#[test]
fn always_on_samples_even_under_an_unsampled_parent() {
    let cx = remote(false);
    let (exporter, ()) = traced_with(AlwaysOn, || {
        with_remote_parent(&cx, || info_span!("server")).in_scope(|| {});
    });
    assert!(exporter.span("server").span_context.is_sampled());
}

#[test]
fn fields_keep_their_types_and_late_records_update_them() {
    let (exporter, ()) = traced(|| {
        let span = info_span!(
            "op",
            count = 3_i64,
            big = u64::MAX,
            small = 7_u64,
            ratio = 0.5,
            ok = true,
            name = "x",
            shown = %"display",
            later = tracing::field::Empty,
        );
        span.record("later", 42);
        span.record("count", 4);
    });
    let op = exporter.span("op");
    assert_eq!(op.attribute("count"), Some(&Value::I64(4)));
    assert_eq!(
        op.attribute("big"),
        Some(&Value::String("18446744073709551615".into()))
    );
    assert_eq!(op.attribute("small"), Some(&Value::I64(7)));
    assert_eq!(op.attribute("ratio"), Some(&Value::F64(0.5)));
    assert_eq!(op.attribute("ok"), Some(&Value::Bool(true)));
    assert_eq!(op.attribute("name"), Some(&Value::String("x".into())));
    assert_eq!(
        op.attribute("shown"),
        Some(&Value::String("display".into()))
    );
    assert_eq!(op.attribute("later"), Some(&Value::I64(42)));
    assert_eq!(
        op.attributes.iter().filter(|kv| kv.key == "count").count(),
        1
    );
}

#[test]
fn otel_fields_set_name_kind_and_status() {
    let (exporter, ()) = traced(|| {
        info_span!("raw", otel.name = "GET /items/{id}", otel.kind = "client").in_scope(|| {});
        let s = info_span!(
            "failing",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty
        );
        s.record("otel.status_code", "ERROR");
        s.record("otel.status_message", "upstream timed out");
        drop(s);
        let ok = info_span!("ok", otel.status_code = "ok");
        ok.in_scope(|| tracing::error!("ignored: Ok is final"));
    });
    let named = exporter.span("GET /items/{id}");
    assert_eq!(named.kind, SpanKind::Client);
    assert!(named.attribute("otel.name").is_none() && named.attribute("otel.kind").is_none());
    assert_eq!(
        exporter.span("failing").status,
        Status::Error {
            message: "upstream timed out".into()
        }
    );
    assert_eq!(exporter.span("ok").status, Status::Ok);
}

#[derive(Debug)]
struct PaymentDeclined;
impl std::fmt::Display for PaymentDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}
impl std::error::Error for PaymentDeclined {}

/// Spans where an error is logged (an event carrying an error value) or
/// recorded in the span's own `error` field.
fn spans_with_errors() {
    info_span!("charge").in_scope(|| {
        let e = PaymentDeclined;
        tracing::warn!(error = &e as &dyn std::error::Error, "charge failed");
    });
    info_span!("display_error").in_scope(|| {
        tracing::info!(error = %PaymentDeclined, "gave up");
    });
    let s = info_span!("field_error", error = tracing::field::Empty);
    s.record("error", &PaymentDeclined as &dyn std::error::Error);
}

fn exception_message(span: &tracewire::SpanData) -> Option<Value> {
    let exception = span.events.iter().find(|e| e.name == "exception")?;
    exception
        .attributes
        .iter()
        .find(|kv| kv.key == "exception.message")
        .map(|kv| kv.value.clone())
}

#[test]
fn error_values_add_exception_events_and_only_the_spans_own_error_sets_status() {
    let (exporter, ()) = traced(spans_with_errors);
    for name in ["charge", "display_error", "field_error"] {
        assert_eq!(
            exception_message(&exporter.span(name)),
            Some(Value::String("card declined".into())),
            "{name}"
        );
    }
    let declined = Status::Error {
        message: "card declined".into(),
    };
    assert_eq!(exporter.span("field_error").status, declined);
    assert_eq!(
        exporter.span("charge").status,
        Status::Unset,
        "a logged error is a log line, not the operation's outcome"
    );
    assert_eq!(exporter.span("display_error").status, Status::Unset);
    let charge = exporter.span("charge");
    let exception = &charge.events[0];
    assert!(exception.attributes.iter().any(
        |kv| kv.key == "exception.type" && kv.value == Value::String("PaymentDeclined".into())
    ));
    assert!(
        exception
            .attributes
            .iter()
            .any(|kv| kv.key == "message" && kv.value == Value::String("charge failed".into()))
    );

    // Opted in, as tracing-opentelemetry does it: events set the status.
    let exporter = InMemoryExporter::new();
    let layer = TracewireLayer::builder()
        .processor(exporter.clone())
        .error_events_set_status(true)
        .build();
    use tracing_subscriber::prelude::*;
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(layer),
        spans_with_errors,
    );
    for name in ["charge", "display_error", "field_error"] {
        assert_eq!(exporter.span(name).status, declined, "{name}");
    }
}

#[test]
fn error_level_events_set_status_only_when_opted_in() {
    let (exporter, ()) = traced(|| {
        info_span!("s").in_scope(|| tracing::error!("logged only"));
    });
    assert_eq!(exporter.span("s").status, Status::Unset);
    assert_eq!(exporter.span("s").events[0].name, "logged only");

    let exporter = InMemoryExporter::new();
    let layer = TracewireLayer::builder()
        .processor(exporter.clone())
        .error_events_set_status(true)
        .build();
    use tracing_subscriber::prelude::*;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("s").in_scope(|| tracing::error!("database unreachable"));
    });
    assert_eq!(
        exporter.span("s").status,
        Status::Error {
            message: "database unreachable".into()
        }
    );
}

#[test]
fn events_in_sampled_spans_become_span_events() {
    let (exporter, ()) = traced(|| {
        info_span!("s").in_scope(|| {
            tracing::info!(items = 2, "cart loaded");
            tracing::debug!(cache = "miss");
        });
    });
    let s = exporter.span("s");
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.events[0].name, "cart loaded");
    assert!(
        s.events[0]
            .attributes
            .iter()
            .any(|kv| kv.key == "items" && kv.value == Value::I64(2))
    );
    assert!(
        s.events[0]
            .attributes
            .iter()
            .any(|kv| kv.key == "level" && kv.value == Value::String("INFO".into()))
    );
    assert!(
        s.events[1].name.starts_with("event "),
        "{}",
        s.events[1].name
    );
    assert_eq!(s.status, Status::Unset);
    assert!(s.events[0].timestamp >= s.start_time && s.events[1].timestamp <= s.end_time);
}

#[test]
fn events_with_explicit_parent_go_to_that_span() {
    let (exporter, ()) = traced(|| {
        let a = info_span!("a");
        info_span!("b").in_scope(|| tracing::info!(parent: &a, "for a"));
    });
    assert_eq!(exporter.span("a").events.len(), 1);
    assert!(exporter.span("b").events.is_empty());
}

#[test]
fn follows_from_and_add_link_become_links() {
    let (exporter, ()) = traced(|| {
        let producer = info_span!("producer");
        let consumer = info_span!("consumer");
        consumer.follows_from(&producer);
        consumer.add_link(&remote(true).span_context().unwrap().clone());
    });
    let producer = exporter.span("producer");
    let consumer = exporter.span("consumer");
    assert_eq!(consumer.links.len(), 2);
    assert_eq!(
        consumer.links[0].span_context.span_id(),
        producer.span_context.span_id()
    );
    assert_eq!(
        consumer.links[1].span_context.trace_id(),
        remote(true).span_context().unwrap().trace_id()
    );
}

#[test]
fn span_limits_count_what_is_dropped() {
    let exporter = InMemoryExporter::new();
    let layer = TracewireLayer::builder()
        .processor(exporter.clone())
        .limits(tracewire::SpanLimits {
            max_attributes: 2,
            max_events: 1,
            max_links: 1,
            max_attributes_per_event: 3,
        })
        .build();
    use tracing_subscriber::prelude::*;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let other = info_span!("other");
        let s = info_span!("s", a = 1, b = 2, c = 3);
        s.follows_from(&other);
        s.follows_from(&other);
        s.in_scope(|| {
            tracing::info!(x = 1, y = 2, z = 3, "first");
            tracing::info!("second");
        });
    });
    let s = exporter.span("s");
    assert_eq!((s.attributes.len(), s.dropped_attributes_count), (2, 1));
    assert_eq!((s.events.len(), s.dropped_events_count), (1, 1));
    assert_eq!((s.links.len(), s.dropped_links_count), (1, 1));
    // level + x + y kept, z dropped.
    assert_eq!(
        (
            s.events[0].attributes.len(),
            s.events[0].dropped_attributes_count
        ),
        (3, 1)
    );
}

#[test]
fn durations_are_measured_and_start_is_wall_clock() {
    let before = std::time::SystemTime::now();
    let (exporter, ()) = traced(|| {
        info_span!("sleepy").in_scope(|| std::thread::sleep(Duration::from_millis(20)));
    });
    let s = exporter.span("sleepy");
    assert!(s.start_time >= before);
    assert!(
        s.duration() >= Duration::from_millis(20),
        "{:?}",
        s.duration()
    );
    assert!(s.duration() < Duration::from_secs(5));
}

#[test]
fn span_ends_when_the_last_handle_closes() {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = info_span!("shared");
        let clone = span.clone();
        drop(span);
        assert_eq!(exporter.len(), 0, "ended while a handle was alive");
        drop(clone);
        assert_eq!(exporter.len(), 1);
    });
}

#[test]
fn set_parent_moves_a_fresh_span_into_the_remote_trace() {
    let cx = remote(true);
    let (exporter, result) = traced(|| {
        let span = span!(Level::INFO, "consume", topic = "orders");
        span.set_parent(&cx).unwrap();
        span.in_scope(|| info_span!("child").in_scope(|| {}));
        // Too late once it has children.
        span.set_parent(&Context::new())
    });
    assert_eq!(result, Err(SetParentError::HasChildren));
    let consume = exporter.span("consume");
    assert_eq!(
        consume.span_context.trace_id(),
        cx.span_context().unwrap().trace_id()
    );
    assert_eq!(consume.parent_span_id, cx.span_context().unwrap().span_id());
    assert_eq!(
        consume.attribute("topic"),
        Some(&Value::String("orders".into()))
    );
    assert_eq!(
        exporter.span("child").span_context.trace_id(),
        consume.span_context.trace_id()
    );
}

#[test]
fn an_unsampled_local_child_has_its_ancestors_context_until_set_parent() {
    let cx = remote(true);
    let sampler = ParentBased::new(AlwaysOff);
    let (exporter, ()) = traced_with(sampler, || {
        let root = info_span!("poll loop");
        let root_cx = root.span_context().expect("a root has ids");
        assert!(!root_cx.is_sampled());
        root.in_scope(|| {
            let span = info_span!("consume");
            // No ids of its own: the unsampled root's context.
            assert_eq!(span.span_context(), Some(root_cx.clone()));
            assert!(!span.is_recording());
            span.set_parent(&cx).unwrap();
            assert!(span.is_recording());
            span.in_scope(|| info_span!("child").in_scope(|| {}));
        });
    });
    let consume = exporter.span("consume");
    assert_eq!(
        consume.span_context.trace_id(),
        cx.span_context().unwrap().trace_id()
    );
    assert_eq!(consume.parent_span_id, cx.span_context().unwrap().span_id());
    assert_eq!(
        exporter.span("child").parent_span_id,
        consume.span_context.span_id()
    );
    assert_eq!(exporter.len(), 2, "the unsampled root is not exported");
}

#[test]
fn set_parent_with_unsampled_context_stops_recording() {
    let (exporter, ()) = traced(|| {
        let span = info_span!("consume");
        span.set_parent(&remote(false)).unwrap();
    });
    assert!(exporter.is_empty());
}

#[test]
fn context_api_without_a_layer_is_empty() {
    let span = info_span!("nobody listens");
    assert_eq!(span.span_context(), None);
    assert_eq!(span.context(), Context::new());
    assert_eq!(
        span.set_parent(&remote(true)),
        Err(SetParentError::NotTraced)
    );
}

#[test]
fn many_threads_never_mix_traces() {
    let (exporter, ()) = traced(|| {
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let dispatch = dispatch.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for j in 0..50 {
                            info_span!("root", worker = i, n = j).in_scope(|| {
                                info_span!("child", worker = i, n = j).in_scope(|| {});
                            });
                        }
                    });
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let roots = exporter.spans_named("root");
    assert_eq!(roots.len(), 400);
    for root in &roots {
        let children = exporter.children_of(root);
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].attribute("worker"), root.attribute("worker"));
        assert_eq!(children[0].attribute("n"), root.attribute("n"));
    }
}
