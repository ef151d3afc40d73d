//! The shop end to end: run the built binary with a small load and check,
//! from the files it exported, that every request became one well-formed
//! trace across the services it touched (the Kafka hop included), with the
//! database, failure, retry and log correlation details a user relies on.

mod collect;
mod support;
mod ui;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tracewire::{SpanKind, Value};
use tracewire_cli::{Span, Trace};

use support::{
    Run, describe, int, is_unset, parent, receives_remote_parent, run_shop, run_shop_with,
    services, span, spans, string,
};

/// Where the shop keeps its tables.
#[derive(Clone, Copy, Debug)]
enum Database<'a> {
    Sqlite,
    Postgres { url: &'a str },
}

/// One run serves every check: starting six processes is the slow part.
#[test]
fn the_shop_is_traced_end_to_end() {
    // Two rounds of the traffic mix; enough rows that a scan is measurable.
    let run = run_shop(20, 50_000, None, Duration::from_secs(300));
    check(&run, Database::Sqlite);
}

/// The same with `DATABASE_URL` pointing at PostgreSQL: ignored unless
/// asked for (`--run-ignored all`, as `.ci/test` does when
/// `TRACEWIRE_SQLX_DB_TESTS=1`); fails when the server is unreachable.
#[test]
#[ignore = "needs PostgreSQL (TRACEWIRE_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test): cargo nextest run --run-ignored all"]
fn the_shop_on_postgresql_is_traced_end_to_end() {
    let url = support::postgres_url();
    let run = run_shop(20, 50_000, Some(&url), Duration::from_secs(300));
    check(&run, Database::Postgres { url: &url });
}

/// With the OTLP endpoint down (a closed local port), the spans still reach
/// the files, and the report says that the OTLP ones were not exported
/// instead of claiming success. Each batch gives up quickly here, so the
/// failures are counted before the services stop.
#[test]
fn an_unreachable_otlp_endpoint_is_reported_not_hidden() {
    let run = shop_with_otlp_down(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let failed: u64 = otlp_counts_of_a_run_with_otlp_down(&run)
        .iter()
        .map(|l| l.failed)
        .sum();
    assert!(failed > 0, "no export failed:\n{}", run.stdout);
}

/// The same with the default timeouts: a service can stop while its OTLP
/// exporter is still retrying; those spans are reported as pending, not
/// as exported.
#[test]
fn spans_still_being_sent_at_shutdown_are_not_reported_as_exported() {
    let run = shop_with_otlp_down(&[]);
    otlp_counts_of_a_run_with_otlp_down(&run);
}

/// A small run of the shop sending its spans to the files and to an OTLP
/// endpoint where nothing listens (a port that was free a moment ago),
/// with the variables `env` too.
fn shop_with_otlp_down(env: &[(&str, &str)]) -> Run {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut env = env.to_vec();
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint));
    run_shop_with(10, 1_000, None, &env, Duration::from_secs(300))
}

/// Checks the report of [`shop_with_otlp_down`]: every span in the files,
/// none exported over OTLP and every one of them reported as failed,
/// dropped or pending, and a warning instead of a claim of success. The
/// OTLP counts of each service.
fn otlp_counts_of_a_run_with_otlp_down(run: &Run) -> Vec<support::ExportLine> {
    let lines = run.export_lines();
    let mut otlp_lines = Vec::new();
    for service in support::SERVICES {
        let of = |exporter: &str| {
            lines
                .iter()
                .find(|l| l.service == service && l.exporter == exporter)
                .unwrap_or_else(|| panic!("no {exporter} counts for {service}:\n{}", run.stdout))
        };
        let (file, otlp) = (of("file"), of("otlp"));
        assert_eq!(file.exported, run.spans_of(service) as u64, "{service}");
        assert_eq!(
            (file.failed, file.dropped, file.pending),
            (0, 0, 0),
            "{service}"
        );
        assert_eq!(otlp.exported, 0, "{service}: nothing listens there");
        assert_eq!(
            otlp.failed + otlp.dropped + otlp.pending,
            file.exported,
            "{service}: every span given to OTLP is reported as not exported"
        );
        otlp_lines.push(otlp.clone());
    }
    assert!(
        run.stdout.contains("spans were not exported"),
        "the report does not say so:\n{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("every span was exported"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("flushed its spans"), "{}", run.stdout);
    otlp_lines
}

fn check(run: &Run, database: Database<'_>) {
    assert_eq!(run.requests.len(), 20);
    every_request_is_one_trace_through_the_services_it_touched(run);
    the_kafka_hop_continues_the_order_trace(run);
    database_spans_carry_the_db_attributes(run, database);
    a_checkout_is_one_trace_across_all_six_services(run);
    the_payment_hop_is_grpc(run);
    a_declined_card_marks_the_right_spans_as_errors(run);
    the_retried_call_shows_its_resend_count(run);
    log_lines_inside_a_request_carry_its_trace(run);
    a_cache_miss_waits_on_the_users_query(run);
    the_report_shows_waterfalls_bottleneck_diff_and_logs(run);
    every_span_is_counted_as_exported(run);
}

/// The services a request of `scenario` goes through.
fn expected_services(scenario: &str) -> BTreeSet<&'static str> {
    let names: &[&str] = match scenario {
        "login" | "login-cache-miss" | "login-retried" => &["gateway", "auth", "users"],
        "order" => &[
            "gateway",
            "auth",
            "users",
            "orders",
            "payments",
            "notifications",
        ],
        "order-payment-fails" => &["gateway", "auth", "users", "orders", "payments"],
        other => panic!("unknown scenario {other}"),
    };
    names.iter().copied().collect()
}

fn every_request_is_one_trace_through_the_services_it_touched(run: &Run) {
    // No stray traces: every span belongs to a request's trace.
    assert_eq!(
        run.traces.len(),
        run.requests.len(),
        "traces other than the requests' ones were exported"
    );
    let mut trace_ids = HashSet::new();
    for request in &run.requests {
        let expected_status = match request.scenario.as_str() {
            "order" => 201,
            "order-payment-fails" => 502,
            _ => 200,
        };
        assert_eq!(
            request.status,
            Some(expected_status),
            "request {} ({})",
            request.n,
            request.scenario
        );
        let trace = run.trace(request);
        assert!(
            trace_ids.insert(trace.id()),
            "two requests share trace {}",
            trace.id().to_hex()
        );
        let context = || {
            format!(
                "request {} ({}):\n{}",
                request.n,
                request.scenario,
                describe(trace)
            )
        };
        assert_eq!(
            trace.orphan_count(),
            0,
            "a span lost its parent: {}",
            context()
        );
        assert_eq!(trace.top_level().len(), 1, "not one root: {}", context());
        let root = trace.span(trace.root());
        assert_eq!(root.service, "gateway", "{}", context());
        assert_eq!(root.kind, SpanKind::Server, "{}", context());
        assert!(root.parent_span_id.is_none(), "{}", context());
        assert_eq!(
            services(trace),
            expected_services(&request.scenario),
            "{}",
            context()
        );
        // Across a process boundary the child is a server or consumer span
        // and its parent the client or producer span that called it.
        for child in trace.spans() {
            let Some(_) = child.parent_span_id else {
                continue;
            };
            let parent = parent(trace, child);
            if parent.service == child.service {
                continue;
            }
            assert!(
                receives_remote_parent(&child.kind),
                "{} {} has a parent in {}: {}",
                child.service,
                child.name,
                parent.service,
                context()
            );
            assert!(
                matches!(parent.kind, SpanKind::Client | SpanKind::Producer),
                "{} {} is the parent of {} {}: {}",
                parent.service,
                parent.name,
                child.service,
                child.name,
                context()
            );
        }
    }
}

fn the_kafka_hop_continues_the_order_trace(run: &Run) {
    let mut checked = 0;
    for request in run.requests_of("order") {
        let trace = run.trace(request);
        let send = span(trace, "orders", "send order.created");
        assert_eq!(send.kind, SpanKind::Producer);
        assert_eq!(parent(trace, send).name, "POST /orders");
        let process = span(trace, "notifications", "process order.created");
        assert_eq!(process.kind, SpanKind::Consumer);
        assert_eq!(
            process.parent_span_id,
            Some(send.span_id),
            "{}",
            describe(trace)
        );
        assert_eq!(string(process, "messaging.system"), Some("kafka"));
        // The notification calls orders back inside the process span.
        let callback = span(trace, "orders", "POST /orders/{id}/notified");
        let client = parent(trace, callback);
        assert_eq!(client.service, "notifications");
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(parent(trace, client).span_id, process.span_id);
        assert_eq!(int(callback, "http.response.status_code"), Some(204));
        assert_eq!(
            spans(trace, "orders", "UPDATE orders").len(),
            2,
            "paid, then notified"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} orders");
}

fn database_spans_carry_the_db_attributes(run: &Run, database: Database<'_>) {
    let db_spans: Vec<(&Trace, &Span)> = run
        .traces
        .iter()
        .flat_map(|t| t.spans().iter().map(move |s| (t, s)))
        .filter(|(_, s)| s.attribute("db.system.name").is_some())
        .collect();
    assert!(!db_spans.is_empty(), "no database spans");
    for (trace, db) in &db_spans {
        assert!(
            ["users", "orders"].contains(&db.service.as_str()),
            "{} queried the database",
            db.service
        );
        assert_eq!(db.kind, SpanKind::Client, "{}", db.name);
        let namespace = string(db, "db.namespace").expect("db.namespace");
        match database {
            Database::Sqlite => {
                assert_eq!(string(db, "db.system.name"), Some("sqlite"));
                assert!(namespace.ends_with("shop.db"), "db.namespace {namespace}");
            }
            Database::Postgres { url } => {
                assert_eq!(string(db, "db.system.name"), Some("postgresql"));
                // The database name: the URL's path.
                let name = url.rsplit('/').next().unwrap_or_default();
                let name = name.split('?').next().unwrap_or_default();
                assert_eq!(namespace, name, "db.namespace");
                assert!(string(db, "server.address").is_some(), "{}", db.name);
            }
        }
        let operation = string(db, "db.operation.name").expect("db.operation.name");
        let table = string(db, "db.collection.name").expect("db.collection.name");
        assert_eq!(db.name, format!("{operation} {table}"));
        assert_eq!(string(db, "db.query.summary"), Some(db.name.as_str()));
        let text = string(db, "db.query.text").expect("db.query.text");
        assert!(
            !text.contains("@shop.example"),
            "a value leaked into {text}"
        );
        assert!(
            !text.contains("'paid'"),
            "a literal was not sanitized: {text}"
        );
        // Every query ran inside a request of the service that made it.
        let caller = parent(trace, db);
        assert_eq!(caller.service, db.service);
        assert_eq!(
            caller.kind,
            SpanKind::Server,
            "{} under {}",
            db.name,
            caller.name
        );
    }

    for request in run.requests_of("login-cache-miss") {
        let trace = run.trace(request);
        let select = span(trace, "users", "SELECT users");
        assert_eq!(
            string(select, "db.query.text"),
            Some("SELECT id, email, name FROM users WHERE email = $1")
        );
        assert_eq!(int(select, "db.response.returned_rows"), Some(1));
        let cache = span(trace, "users", "cache get");
        assert_eq!(cache.attribute("cache.hit"), Some(&Value::Bool(false)));
    }
    for request in run.requests_of("login") {
        let trace = run.trace(request);
        assert!(
            spans(trace, "users", "SELECT users").is_empty(),
            "a cached user was queried"
        );
        let cache = span(trace, "users", "cache get");
        assert_eq!(cache.attribute("cache.hit"), Some(&Value::Bool(true)));
    }
}

/// The gRPC method the order service calls.
const CHARGE: &str = "shop.Payments/Charge";

/// A checkout authenticates the customer through auth (→ users) and places
/// the order (→ payments over gRPC → Kafka → notifications → orders): one
/// trace id for all of it, spans from all six services, each hop under the
/// span that made it.
fn a_checkout_is_one_trace_across_all_six_services(run: &Run) {
    let mut checked = 0;
    for request in run.requests_of("order") {
        let trace = run.trace(request);
        let context = describe(trace);
        assert_eq!(
            trace.id().to_hex().to_string(),
            request.trace_id.clone().expect("traceresponse"),
            "{context}"
        );
        assert!(
            trace.spans().iter().all(|s| s.trace_id == trace.id()),
            "{context}"
        );
        assert_eq!(
            services(trace),
            support::SERVICES.into_iter().collect::<BTreeSet<_>>(),
            "{context}"
        );
        // The gateway calls auth, then orders, both from its request span.
        let root = trace.span(trace.root());
        let login = span(trace, "auth", "POST /login");
        let order = span(trace, "orders", "POST /orders");
        for served in [login, order] {
            let call = parent(trace, served);
            assert_eq!(call.service, "gateway", "{context}");
            assert_eq!(call.parent_span_id, Some(root.span_id), "{context}");
        }
        // auth asks users, who answers from its cache (a hot user).
        let lookup = span(trace, "users", "POST /users/lookup");
        assert_eq!(parent(trace, parent(trace, lookup)).span_id, login.span_id);
        assert_eq!(
            span(trace, "users", "cache get").attribute("cache.hit"),
            Some(&Value::Bool(true))
        );
        // orders charges through payments, then publishes.
        let charge = span(trace, "payments", CHARGE);
        assert_eq!(parent(trace, parent(trace, charge)).span_id, order.span_id);
        assert_eq!(
            parent(trace, span(trace, "payments", "charge card")).span_id,
            charge.span_id
        );
        span(trace, "notifications", "process order.created");
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} checkouts");
}

/// orders → payments is a gRPC call: a CLIENT span in orders and a SERVER
/// span in payments, both with the RPC attributes, and the right status
/// for an accepted card and a declined one.
fn the_payment_hop_is_grpc(run: &Run) {
    let mut checked = BTreeSet::new();
    for request in run
        .requests_of("order")
        .chain(run.requests_of("order-payment-fails"))
    {
        let trace = run.trace(request);
        let context = describe(trace);
        let server = span(trace, "payments", CHARGE);
        let client = parent(trace, server);
        assert_eq!(server.kind, SpanKind::Server, "{context}");
        assert_eq!(client.kind, SpanKind::Client, "{context}");
        assert_eq!(client.service, "orders", "{context}");
        assert_eq!(client.name, CHARGE, "{context}");
        for rpc in [client, server] {
            assert_eq!(string(rpc, "rpc.system.name"), Some("grpc"), "{context}");
            assert_eq!(string(rpc, "rpc.method"), Some(CHARGE), "{context}");
            assert_eq!(
                rpc.attribute("http.request.method"),
                None,
                "not an HTTP span: {context}"
            );
        }
        assert_eq!(string(client, "server.address"), Some("127.0.0.1"));
        assert!(int(client, "server.port").is_some(), "{context}");
        // The server span is Unset either way (a declined card is not a
        // server failure); the client span is Error unless the code is OK.
        assert!(is_unset(server), "{context}");
        match request.scenario.as_str() {
            "order" => {
                for rpc in [client, server] {
                    assert_eq!(string(rpc, "rpc.response.status_code"), Some("OK"));
                }
                assert!(is_unset(client), "{context}");
            }
            _ => {
                for rpc in [client, server] {
                    assert_eq!(
                        string(rpc, "rpc.response.status_code"),
                        Some("FAILED_PRECONDITION")
                    );
                }
                assert!(client.is_error(), "{context}");
                assert_eq!(client.error_message(), Some("the card was declined"));
            }
        }
        checked.insert(request.scenario.as_str());
    }
    assert_eq!(checked.len(), 2, "accepted and declined cards: {checked:?}");
}

fn a_declined_card_marks_the_right_spans_as_errors(run: &Run) {
    let mut checked = 0;
    for request in run.requests_of("order-payment-fails") {
        let trace = run.trace(request);
        let context = describe(trace);
        // payments: the charge failed; its server span answered
        // FAILED_PRECONDITION, a business outcome, which leaves a gRPC
        // server span's status unset.
        let charge = span(trace, "payments", "charge card");
        assert!(charge.is_error(), "{context}");
        assert_eq!(charge.error_message(), Some("the card was declined"));
        assert_eq!(string(charge, "error.type"), Some("card_declined"));
        let payments = span(trace, "payments", CHARGE);
        assert_eq!(
            string(payments, "rpc.response.status_code"),
            Some("FAILED_PRECONDITION")
        );
        assert!(is_unset(payments), "{context}");
        // orders: its call to payments is an error (a client span with a
        // code other than OK), and so is its own answer, a 502.
        let call = parent(trace, payments);
        assert_eq!(call.service, "orders");
        assert_eq!(call.kind, SpanKind::Client);
        assert_eq!(
            string(call, "rpc.response.status_code"),
            Some("FAILED_PRECONDITION")
        );
        assert_eq!(string(call, "error.type"), Some("FAILED_PRECONDITION"));
        assert!(call.is_error(), "{context}");
        let order = span(trace, "orders", "POST /orders");
        assert_eq!(int(order, "http.response.status_code"), Some(502));
        assert!(order.is_error(), "{context}");
        // gateway: relays the 502.
        let root = trace.span(trace.root());
        assert_eq!(int(root, "http.response.status_code"), Some(502));
        assert!(root.is_error(), "{context}");
        // Nothing else failed, and nothing was published.
        let errors: BTreeSet<(&str, &str)> = trace
            .spans()
            .iter()
            .filter(|s| s.is_error())
            .map(|s| (s.service.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(spans(trace, "orders", "send order.created").is_empty());
        checked += 1;
    }
    assert!(checked >= 2);
    // Successful orders have no error anywhere.
    for request in run.requests_of("order") {
        let trace = run.trace(request);
        assert_eq!(trace.error_count(), 0, "{}", describe(trace));
    }
}

fn the_retried_call_shows_its_resend_count(run: &Run) {
    let mut checked = 0;
    for request in run.requests_of("login-retried") {
        let trace = run.trace(request);
        let context = describe(trace);
        let root = trace.span(trace.root());
        let mut attempts: Vec<&Span> = trace
            .children(trace.root())
            .iter()
            .map(|&i| trace.span(i))
            .filter(|s| s.kind == SpanKind::Client)
            .collect();
        attempts.sort_by_key(|s| s.start_unix_nano);
        assert_eq!(attempts.len(), 2, "one span per attempt: {context}");
        let (first, second) = (attempts[0], attempts[1]);
        assert_eq!(int(first, "http.response.status_code"), Some(503));
        assert!(first.is_error(), "{context}");
        assert_eq!(int(first, "http.request.resend_count"), None);
        assert_eq!(int(second, "http.response.status_code"), Some(200));
        assert_eq!(int(second, "http.request.resend_count"), Some(1));
        assert!(!second.is_error(), "{context}");
        // auth saw both attempts, each under its own client span.
        let served = spans(trace, "auth", "POST /login");
        assert_eq!(served.len(), 2, "{context}");
        for attempt in [first, second] {
            assert!(
                served
                    .iter()
                    .any(|s| s.parent_span_id == Some(attempt.span_id)),
                "{context}"
            );
        }
        assert_eq!(int(root, "http.response.status_code"), Some(200));
        assert!(!root.is_error(), "the retry succeeded: {context}");
        checked += 1;
    }
    assert!(checked >= 2);
}

fn log_lines_inside_a_request_carry_its_trace(run: &Run) {
    // Every exported span, by (service, trace id, span id).
    let exported: HashSet<(&str, String, String)> = run
        .traces
        .iter()
        .flat_map(|t| t.spans())
        .map(|s| {
            (
                s.service.as_str(),
                s.trace_id.to_hex().to_string(),
                s.span_id.to_hex().to_string(),
            )
        })
        .collect();
    let mut per_trace: HashMap<String, BTreeSet<&str>> = HashMap::new();
    for line in &run.logs {
        let json = &line.json;
        if json.get("span").is_none() {
            continue;
        }
        let trace_id = json["trace_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace_id: {json}"));
        let span_id = json["span_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no span_id: {json}"));
        assert_eq!(json["trace_flags"].as_str(), Some("03"), "{json}");
        assert!(
            exported.contains(&(line.service, trace_id.to_owned(), span_id.to_owned())),
            "{} logged inside a span that was not exported: {json}",
            line.service
        );
        per_trace
            .entry(trace_id.to_owned())
            .or_default()
            .insert(line.service);
    }
    // Each request left log lines in every service it went through.
    for request in &run.requests {
        let trace = run.trace(request);
        let logged = per_trace
            .get(&trace.id().to_hex().to_string())
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            logged,
            services(trace),
            "request {} ({}): services with log lines of its trace",
            request.n,
            request.scenario
        );
    }
}

/// What makes a cache miss slow, shown by the trace's structure (never by
/// its timings, which a loaded machine distorts): the lookup goes to the
/// database, whose `SELECT users` span is on the trace's critical path
/// below the users service's request span and carries the scan's details;
/// a cache hit's critical path has no database span at all.
fn a_cache_miss_waits_on_the_users_query(run: &Run) {
    let mut misses = 0;
    for request in run.requests_of("login-cache-miss") {
        let trace = run.trace(request);
        let context = describe(trace);
        let path = tracewire_cli::critical_path(trace);
        let select = spans(trace, "users", "SELECT users");
        let [select] = select[..] else {
            panic!("one SELECT users per cache miss: {context}");
        };
        let index = trace
            .index_of(select.span_id)
            .expect("the span is in its trace");
        assert!(
            path.step(index).is_some(),
            "SELECT users is not on the critical path: {context}"
        );
        let lookup = parent(trace, select);
        assert_eq!(lookup.name, "POST /users/lookup", "{context}");
        assert!(
            path.step(trace.index_of(lookup.span_id).expect("in its trace"))
                .is_some(),
            "{context}"
        );
        // The query the cache miss waits on: a lookup by e-mail (a column
        // without an index, so a scan of the table) finding one user.
        assert_eq!(string(select, "db.operation.name"), Some("SELECT"));
        assert_eq!(string(select, "db.collection.name"), Some("users"));
        assert!(
            string(select, "db.query.text").is_some_and(|t| t.contains("WHERE email = ")),
            "{context}"
        );
        assert_eq!(int(select, "db.response.returned_rows"), Some(1));
        misses += 1;
    }
    assert!(misses >= 2, "only {misses} cache misses");
    for request in run.requests_of("login") {
        let trace = run.trace(request);
        let path = tracewire_cli::critical_path(trace);
        assert!(
            path.steps()
                .iter()
                .all(|s| trace.span(s.span).attribute("db.system.name").is_none()),
            "a cache hit waited on the database: {}",
            describe(trace)
        );
    }
}

/// The report gives every service's export counts, and with the file
/// exporter alone every span a service wrote is counted as exported.
fn every_span_is_counted_as_exported(run: &Run) {
    let lines = run.export_lines();
    for service in support::SERVICES {
        let of_service: Vec<_> = lines.iter().filter(|l| l.service == service).collect();
        assert_eq!(
            of_service.len(),
            1,
            "{service}: one exporter's counts expected:\n{}",
            run.stdout
        );
        let counts = of_service[0];
        assert_eq!(counts.exporter, "file");
        assert_eq!(counts.exported, run.spans_of(service) as u64, "{service}");
        assert_eq!(
            (counts.failed, counts.dropped, counts.pending),
            (0, 0, 0),
            "{service}"
        );
    }
    assert!(
        run.stdout.contains("every span was exported"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("not exported"), "{}", run.stdout);
}

fn the_report_shows_waterfalls_bottleneck_diff_and_logs(run: &Run) {
    let slowest = run
        .requests_of("login-cache-miss")
        .map(|r| run.trace(r))
        .max_by_key(|t| t.duration_nanos())
        .expect("a cache miss");
    let id = slowest.id().to_hex().to_string();
    for expected in [
        "A normal login",
        "The slowest cache miss",
        &format!("trace {id}"),
        "bottleneck",
        "compared with the normal one",
        "SELECT users",
        &format!("gathered from every service by trace_id={id}"),
        "cache miss: looking the user up in the database",
        "A checkout: one trace through HTTP, gRPC, SQL and the Kafka topic order.created",
        "across all six services: gateway → auth → users → orders → payments → notifications",
        "gRPC CLIENT orders",
        "gRPC SERVER payments",
        "rpc.method=shop.Payments/Charge  rpc.response.status_code=OK",
        "process order.created",
        "charge card",
        "attempt 2  POST 200  status Unset  http.request.resend_count=1",
        &format!("cargo run -p tracewire-cli -- view {id}"),
        "# the checkout",
        "19 spans · 6 services · 0 errors",
    ] {
        assert!(
            run.stdout.contains(expected),
            "the report lacks {expected:?}:\n{}",
            run.stdout
        );
    }
}
