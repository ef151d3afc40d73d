//! Time to first render of a 10,000-span trace in the web viewer, in
//! headless Chromium (Debian's `chromium` and `chromium-driver`).
//!
//! A collector and the viewer run in this process; the trace is sent as
//! OTLP/JSON. Each run loads the trace's page afresh and reads, in the
//! page, the time from the start of navigation to the first waterfall
//! render (`performance.now()` when the rows are drawn: fetching the
//! span, view and critical-path answers, parsing them and drawing the
//! visible rows). It reports; it never asserts a timing.
//!
//! ```sh
//! cargo bench -p tracewire-cli --bench web_render
//! ```

#[path = "../tests/web/browser.rs"]
mod browser;
#[path = "../tests/web/otlp.rs"]
mod otlp;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use otlp::{CLIENT, INTERNAL, Running, SERVER, SpanSpec};

const TRACE: &str = "0123456789abcdef0123456789abcdef";
const SPANS: u64 = 10_000;
const RUNS: usize = 7;

/// A request fanning out to 40 downstream calls, each with 249 database
/// and cache calls below it: 10,000 spans in 8 services.
fn big_trace() -> Vec<SpanSpec> {
    let services = [
        "gateway",
        "orders",
        "payments",
        "inventory",
        "users",
        "pricing",
        "search",
        "shipping",
    ];
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        - 60_000_000_000;
    let us = |n: u64| t0 + n * 1_000;
    let mut spans = vec![SpanSpec {
        trace: TRACE.into(),
        id: 1,
        parent: 0,
        service: "gateway".into(),
        name: "POST /checkout".into(),
        kind: SERVER,
        start_ns: us(0),
        end_ns: us(2_000_000),
        attributes: vec![("http.request.method", "POST".into())],
        error: None,
        links: Vec::new(),
    }];
    let mut id = 2;
    let calls = 40;
    let per_call = (SPANS - 1) / calls - 1;
    for call in 0..calls {
        let service = services[(call as usize % (services.len() - 1)) + 1];
        let start = call * 50_000;
        let server = id;
        spans.push(SpanSpec {
            trace: TRACE.into(),
            id: server,
            parent: 1,
            service: service.into(),
            name: format!("POST /{service}/{call}"),
            kind: SERVER,
            start_ns: us(start),
            end_ns: us(start + 49_000),
            attributes: vec![("http.request.method", "POST".into())],
            error: None,
            links: Vec::new(),
        });
        id += 1;
        for i in 0..per_call {
            let s = start + 100 + i * 190;
            spans.push(SpanSpec {
                trace: TRACE.into(),
                id,
                parent: server,
                service: service.into(),
                name: if i % 3 == 0 {
                    "cache get".into()
                } else {
                    format!("SELECT {service}")
                },
                kind: if i % 3 == 0 { INTERNAL } else { CLIENT },
                start_ns: us(s),
                end_ns: us(s + 150),
                attributes: vec![("db.system.name", "postgresql".into())],
                error: (i == 7 && call == 3).then(|| "deadlock detected".into()),
                links: Vec::new(),
            });
            id += 1;
        }
    }
    while (spans.len() as u64) < SPANS {
        spans.push(SpanSpec {
            trace: TRACE.into(),
            id,
            parent: 1,
            service: "gateway".into(),
            name: "audit".into(),
            kind: INTERNAL,
            start_ns: us(1_999_000),
            end_ns: us(1_999_500),
            attributes: Vec::new(),
            error: None,
            links: Vec::new(),
        });
        id += 1;
    }
    spans
}

/// The best of three in-process answers to `GET path`, in milliseconds.
async fn server_ms(running: &Running, path: &str) -> f64 {
    use http_body_util::BodyExt as _;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let reply =
            tracewire_cli::web::respond(running.collector.store(), &hyper::Method::GET, path, "")
                .await;
        let _ = reply.into_body().collect().await;
        best = best.min(started.elapsed().as_secs_f64() * 1e3);
    }
    best
}

fn main() {
    if !std::path::Path::new("/usr/bin/chromedriver").exists()
        && std::env::var_os("TRACEWIRE_CHROMEDRIVER").is_none()
    {
        println!("web_render: skipped, no chromedriver (apt-get install chromium chromium-driver)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let running = Running::start().await;
        let spans = big_trace();
        running.send_spans(&spans).await;
        let mut server = Vec::new();
        for path in [
            format!("/api/traces/{TRACE}"),
            format!("/api/traces/{TRACE}/view"),
            format!("/api/traces/{TRACE}/critical-path"),
        ] {
            server.push(format!("{path}: {:.0} ms", server_ms(&running, &path).await));
        }
        let mut best = f64::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let rows = running.collector.store().trace(TRACE).await.expect("rows");
            assert_eq!(rows.len() as u64, SPANS);
            best = best.min(started.elapsed().as_secs_f64() * 1e3);
        }
        server.push(format!("Store::trace: {best:.0} ms"));
        let browser = browser::Browser::start().await;
        let url = running.web.trace_url(TRACE);
        let mut in_page = Vec::new();
        let mut wall = Vec::new();
        let mut in_dom = 0;
        for _ in 0..RUNS {
            browser.client.goto("about:blank").await.expect("blank");
            let started = Instant::now();
            browser.client.goto(&url).await.expect("the page");
            let deadline = Instant::now() + Duration::from_secs(60);
            let first = loop {
                let v = browser
                    .client
                    .execute(
                        "return window.tracewire && window.tracewire.firstRender;",
                        Vec::new(),
                    )
                    .await
                    .expect("script");
                if let Some(ms) = v.as_f64() {
                    break ms;
                }
                assert!(Instant::now() < deadline, "the trace did not render");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            wall.push(started.elapsed().as_secs_f64() * 1e3);
            in_page.push(first);
            in_dom = browser
                .client
                .execute(
                    "return document.querySelectorAll('#span-rows .row').length;",
                    Vec::new(),
                )
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
        }
        let shot = browser.screenshot("bench-10000-spans").await;
        browser.close().await;
        running.stop().await;
        in_page.sort_by(f64::total_cmp);
        wall.sort_by(f64::total_cmp);
        println!(
            "web_render: {SPANS} spans, time to first render (navigation start → rows drawn), {RUNS} runs:\n  \
             median {:.0} ms, min {:.0} ms, max {:.0} ms (in the page)\n  \
             median {:.0} ms (WebDriver wall clock, goto → render seen)\n  \
             rows in the DOM: {in_dom} of {SPANS} (virtualised)\n  \
             server answers (best of 3, in-process): {}\n  screenshot: {}",
            in_page[RUNS / 2],
            in_page[0],
            in_page[RUNS - 1],
            wall[RUNS / 2],
            server.join(", "),
            shot.display()
        );
    });
}
