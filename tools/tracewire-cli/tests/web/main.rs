//! The web viewer in a real browser: headless Chromium from Debian's
//! `chromium` and `chromium-driver` packages (`.ci/run` installs them),
//! driven over WebDriver. Each test starts a collector and the viewer on
//! free ports, sends a shop's traces and logs as OTLP/JSON, and saves a
//! screenshot under `$CARGO_TARGET_TMPDIR/web-screenshots/`.
//!
//! The shop, five minutes ago, one trace every 3 s:
//!
//! ```text
//! login ×5 (one slow)  gateway POST /login › gateway POST › auth POST /verify
//!                        › auth GET › users GET /users/{id} › users SELECT users
//!                      auth bcrypt verify (after the call)
//!   normal: SELECT users 5–8 ms, users' own work 12 ms, bcrypt 10 ms
//!   slow:   SELECT users 420 ms, no own work, bcrypt 4 ms; enduser.id=mallory
//! checkout             gateway POST /checkout › orders POST /orders › SELECT products,
//!                        gRPC payments.Charge/Pay › payments INSERT charges,
//!                        kafka order.created publish › notifications order.created process,
//!                        INSERT orders
//! checkout (error)     the same, the payment declined (no Kafka message)
//! analytics            analytics order.created process, its own trace, linked to
//!                        the checkout's producer span
//! ```
//!
//! The browser tests are ignored by default (they need the browser); run
//! them with `cargo nextest run -p tracewire-cli --test web --run-ignored all`.
//! `endpoints` checks the viewer's answers without a browser and always runs.
//! With `TRACEWIRE_DOCS_SCREENSHOT=1`, the slow login's waterfall is also
//! saved as `docs/waterfall.png` at the repository's root.

mod browser;
mod endpoints;
mod otlp;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::{Value, json};

use browser::Browser;
use otlp::{CLIENT, CONSUMER, INTERNAL, LogSpec, PRODUCER, Running, SERVER, SpanSpec};

/// The normal logins' trace ids; `LOGINS[0]` is the baseline.
const LOGINS: [&str; 4] = [
    "10000000000000000000000000000001",
    "10000000000000000000000000000002",
    "10000000000000000000000000000003",
    "10000000000000000000000000000004",
];
const SLOW_LOGIN: &str = "10000000000000000000000000000005";
const CHECKOUT: &str = "20000000000000000000000000000001";
const FAILED_CHECKOUT: &str = "20000000000000000000000000000002";
const ANALYTICS: &str = "30000000000000000000000000000001";
/// The checkout's Kafka producer span.
const PRODUCER_SPAN: u64 = 0x2107;

const MS: u64 = 1_000_000;

/// The login's spans in tree order, as the waterfall shows them.
const LOGIN_ROWS: [(&str, &str, usize); 7] = [
    ("gateway", "POST /login", 0),
    ("gateway", "POST", 1),
    ("auth", "POST /verify", 2),
    ("auth", "GET", 3),
    ("users", "GET /users/{id}", 4),
    ("users", "SELECT users", 5),
    ("auth", "bcrypt verify", 3),
];

#[allow(clippy::too_many_arguments)]
fn span(
    trace: &str,
    id: u64,
    parent: u64,
    service: &str,
    name: &str,
    kind: u8,
    (start, end): (u64, u64),
    attributes: &[(&'static str, &str)],
) -> SpanSpec {
    SpanSpec {
        trace: trace.into(),
        id,
        parent,
        service: service.into(),
        name: name.into(),
        kind,
        start_ns: start,
        end_ns: end,
        attributes: attributes
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect(),
        error: None,
        links: Vec::new(),
    }
}

/// A login at `t0` (ns): the query takes `query` ms, the users service's
/// own work `own` ms, bcrypt `bcrypt` ms.
fn login(trace: &str, t0: u64, query: u64, own: u64, bcrypt: u64, user: &str) -> Vec<SpanSpec> {
    let at = |ms: u64| t0 + ms * MS;
    let users_end = 5 + query + own + 1;
    let auth_get_end = users_end + 1;
    let bcrypt_end = auth_get_end + bcrypt;
    let auth_end = bcrypt_end + 1;
    let client_end = auth_end + 1;
    let root_end = client_end + 1;
    let base = u64::from_str_radix(&trace[28..], 16).unwrap_or(0) << 8;
    let http = |method: &'static str| [("http.request.method", method)];
    vec![
        span(
            trace,
            base + 1,
            0,
            "gateway",
            "POST /login",
            SERVER,
            (at(0), at(root_end)),
            &[
                ("http.request.method", "POST"),
                ("http.route", "/login"),
                ("enduser.id", user),
            ],
        ),
        span(
            trace,
            base + 2,
            base + 1,
            "gateway",
            "POST",
            CLIENT,
            (at(1), at(client_end)),
            &http("POST"),
        ),
        span(
            trace,
            base + 3,
            base + 2,
            "auth",
            "POST /verify",
            SERVER,
            (at(2), at(auth_end)),
            &[("http.request.method", "POST"), ("http.route", "/verify")],
        ),
        span(
            trace,
            base + 4,
            base + 3,
            "auth",
            "GET",
            CLIENT,
            (at(3), at(auth_get_end)),
            &http("GET"),
        ),
        span(
            trace,
            base + 5,
            base + 4,
            "users",
            "GET /users/{id}",
            SERVER,
            (at(4), at(users_end)),
            &[
                ("http.request.method", "GET"),
                ("http.route", "/users/{id}"),
            ],
        ),
        span(
            trace,
            base + 6,
            base + 5,
            "users",
            "SELECT users",
            CLIENT,
            (at(5), at(5 + query)),
            &[
                ("db.system.name", "postgresql"),
                (
                    "db.query.text",
                    "SELECT id, hash FROM users WHERE name = $1",
                ),
            ],
        ),
        span(
            trace,
            base + 7,
            base + 3,
            "auth",
            "bcrypt verify",
            INTERNAL,
            (at(auth_get_end), at(bcrypt_end)),
            &[],
        ),
    ]
}

/// A checkout at `t0`; `declined`: the payment fails.
fn checkout(trace: &str, t0: u64, declined: bool) -> Vec<SpanSpec> {
    let at = |ms: u64| t0 + ms * MS;
    let b = 0x2000 | (u64::from_str_radix(&trace[28..], 16).unwrap_or(0) << 8);
    let grpc = [
        ("rpc.system.name", "grpc"),
        ("rpc.method", "payments.Charge/Pay"),
    ];
    let pg = |q: &'static str| [("db.system.name", "postgresql"), ("db.query.text", q)];
    let mut spans = vec![
        span(
            trace,
            b + 1,
            0,
            "gateway",
            "POST /checkout",
            SERVER,
            (at(0), at(200)),
            &[("http.request.method", "POST"), ("http.route", "/checkout")],
        ),
        span(
            trace,
            b + 2,
            b + 1,
            "gateway",
            "POST",
            CLIENT,
            (at(2), at(198)),
            &[("http.request.method", "POST")],
        ),
        span(
            trace,
            b + 3,
            b + 2,
            "orders",
            "POST /orders",
            SERVER,
            (at(3), at(197)),
            &[("http.request.method", "POST"), ("http.route", "/orders")],
        ),
        span(
            trace,
            b + 4,
            b + 3,
            "orders",
            "SELECT products",
            CLIENT,
            (at(5), at(15)),
            &pg("SELECT * FROM products WHERE id = ANY($1)"),
        ),
        span(
            trace,
            b + 5,
            b + 3,
            "orders",
            "payments.Charge/Pay",
            CLIENT,
            (at(20), at(120)),
            &grpc,
        ),
        span(
            trace,
            b + 6,
            b + 5,
            "payments",
            "payments.Charge/Pay",
            SERVER,
            (at(21), at(119)),
            &grpc,
        ),
        span(
            trace,
            b + 8,
            b + 6,
            "payments",
            "INSERT charges",
            CLIENT,
            (at(30), at(40)),
            &pg("INSERT INTO charges VALUES ($1, $2)"),
        ),
    ];
    if declined {
        for s in &mut spans {
            if s.id != b + 4 && s.id != b + 8 {
                s.error = Some("card declined".into());
            }
        }
        // The declined checkout ends after the payment.
        for s in &mut spans {
            if s.id <= b + 3 {
                s.end_ns = at(130 - (s.id - b) * 2);
            }
        }
    } else {
        let kafka = [
            ("messaging.system", "kafka"),
            ("messaging.destination.name", "order.created"),
        ];
        spans.extend([
            span(
                trace,
                b + 7,
                b + 3,
                "orders",
                "order.created publish",
                PRODUCER,
                (at(130), at(135)),
                &kafka,
            ),
            span(
                trace,
                b + 9,
                b + 7,
                "notifications",
                "order.created process",
                CONSUMER,
                (at(140), at(170)),
                &kafka,
            ),
            span(
                trace,
                b + 10,
                b + 3,
                "orders",
                "INSERT orders",
                CLIENT,
                (at(140), at(150)),
                &pg("INSERT INTO orders VALUES ($1)"),
            ),
        ]);
    }
    spans
}

/// Five minutes ago, whole seconds, in ns.
fn base_time() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (now - 300) * 1_000_000_000
}

fn shop() -> (Vec<SpanSpec>, Vec<LogSpec>) {
    let t0 = base_time();
    let every = 3_000 * MS;
    let mut spans = Vec::new();
    for (i, (trace, query)) in LOGINS.iter().zip([6, 7, 5, 8]).enumerate() {
        spans.extend(login(trace, t0 + i as u64 * every, query, 12, 10, "alice"));
    }
    let slow_t0 = t0 + 4 * every;
    spans.extend(login(SLOW_LOGIN, slow_t0, 420, 0, 4, "mallory"));
    spans.extend(checkout(CHECKOUT, t0 + 5 * every, false));
    spans.extend(checkout(FAILED_CHECKOUT, t0 + 6 * every, true));
    let mut consumer = span(
        ANALYTICS,
        0x3001,
        0,
        "analytics",
        "order.created process",
        CONSUMER,
        (t0 + 5 * every + 300 * MS, t0 + 5 * every + 340 * MS),
        &[
            ("messaging.system", "kafka"),
            ("messaging.destination.name", "order.created"),
        ],
    );
    consumer.links.push((CHECKOUT.into(), PRODUCER_SPAN));
    spans.push(consumer);

    let log = |trace: &str,
               span: u64,
               service: &str,
               ms: u64,
               (n, text): (u8, &'static str),
               body: &str| LogSpec {
        trace: trace.into(),
        span,
        service: service.into(),
        time_ns: slow_t0 + ms * MS,
        severity_number: n,
        severity_text: text,
        body: body.into(),
    };
    let info = (9, "INFO");
    // Sent out of order: the page interleaves them by time.
    let logs = vec![
        log(SLOW_LOGIN, 0x503, "auth", 432, info, "login ok for mallory"),
        log(
            SLOW_LOGIN,
            0x501,
            "gateway",
            0,
            info,
            "login request for mallory",
        ),
        log(
            SLOW_LOGIN,
            0x505,
            "users",
            425,
            (13, "WARN"),
            "slow query: SELECT users took 420 ms",
        ),
        log(SLOW_LOGIN, 0x503, "auth", 2, info, "verifying credentials"),
    ];
    (spans, logs)
}

/// A collector with the shop, the viewer, and a browser.
struct Shop {
    running: Running,
    browser: Browser,
}

impl Shop {
    async fn start() -> Shop {
        let running = Running::start().await;
        let (spans, logs) = shop();
        running.send_spans(&spans).await;
        running.send_logs(&logs).await;
        let browser = Browser::start().await;
        Shop { running, browser }
    }

    fn url(&self, hash: &str) -> String {
        format!("{}{hash}", self.running.web.url())
    }

    /// Loads the page at `hash` afresh and waits (bounded) until it has
    /// rendered what the hash asks for.
    async fn goto(&self, hash: &str) {
        let client = &self.browser.client;
        client.goto("about:blank").await.expect("a blank page");
        client.goto(&self.url(hash)).await.expect("the page loads");
        self.ready().await;
    }

    /// Waits (bounded) until the page has rendered the current hash.
    async fn ready(&self) {
        self.until("const v = document.getElementById('view'); return v && v.dataset.ready === (location.hash || '#/search') ? true : null;")
            .await;
    }

    /// Waits (bounded) for an element.
    async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        self.browser
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Runs `script` in the page (its last statement returns).
    async fn js(&self, script: &str) -> Value {
        self.browser
            .client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Polls `script` until it returns something other than null/false.
    async fn until(&self, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script).await;
            if !v.is_null() && v != json!(false) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The waterfall's rows in the DOM: (service, name, depth).
    async fn rows(&self, container: &str) -> Vec<(String, String, usize)> {
        let v = self
            .js(&format!(
                "return [...document.querySelectorAll('{container} .row')]
                    .sort((a, b) => a.dataset.index - b.dataset.index)
                    .map(r => [r.dataset.service, r.dataset.name, Number(r.dataset.depth)]);"
            ))
            .await;
        serde_json::from_value(v).expect("rows")
    }

    async fn stop(self, screenshot: &str) {
        let path = self.browser.screenshot(screenshot).await;
        assert!(path.exists());
        self.browser.close().await;
        self.running.stop().await;
    }
}

fn expected_login_rows() -> Vec<(String, String, usize)> {
    LOGIN_ROWS
        .iter()
        .map(|(s, n, d)| ((*s).to_owned(), (*n).to_owned(), *d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn the_slowest_login_is_found_and_its_bottleneck_and_logs_shown() {
    let shop = Shop::start().await;
    shop.goto("#/search").await;

    // Search by service and operation, slowest first.
    let service = shop.wait("#f-service option[value='gateway']").await;
    service.click().await.expect("gateway selected");
    let operation = shop.wait("#f-operation").await;
    operation.send_keys("POST /login").await.expect("typed");
    shop.wait("#f-sort option[value='slowest']")
        .await
        .click()
        .await
        .expect("sort chosen");
    shop.wait("#f-submit")
        .await
        .click()
        .await
        .expect("submitted");
    let ids = shop
        .until(
            "const r = [...document.querySelectorAll('#results tr.result')];
             return location.hash.includes('run=1') && document.getElementById('view').dataset.ready === location.hash
                 ? r.map(x => x.dataset.traceId) : null;",
        )
        .await;
    let ids: Vec<String> = serde_json::from_value(ids).expect("ids");
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(ids[0], SLOW_LOGIN, "the slowest first");
    // The scatter marks it as the outlier.
    let outliers = shop
        .js("return [...document.querySelectorAll('svg.scatter circle.outlier')].map(c => c.dataset.traceId);")
        .await;
    assert_eq!(outliers, json!([SLOW_LOGIN]));
    let first_row = shop.wait("#results tr.result .root-op").await;
    assert_eq!(
        first_row.text().await.expect("text"),
        "gateway: POST /login"
    );
    shop.browser.screenshot("search-logins").await;

    // Open it.
    first_row.click().await.expect("opened");
    shop.ready().await;
    assert!(
        shop.browser
            .client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .ends_with(&format!("#/trace/{SLOW_LOGIN}"))
    );
    assert_eq!(shop.rows("#span-rows").await, expected_login_rows());

    // The bottleneck is SELECT users, on the critical path, badge shown.
    let bottleneck = shop
        .js("const b = [...document.querySelectorAll('#span-rows .row[data-bottleneck]')];
             return b.map(r => [r.dataset.name, r.dataset.critical, r.querySelector('.bneck').textContent]);")
        .await;
    assert_eq!(bottleneck, json!([["SELECT users", "true", "bottleneck"]]));
    let summary = shop.wait("#bottleneck").await.text().await.expect("text");
    assert!(summary.contains("users: SELECT users"), "{summary}");

    // The log lines, interleaved by time, with their services.
    let logs = shop
        .js(
            "return [...document.querySelectorAll('#logs tr.log-row')].map(r =>
               [r.querySelector('.chip').textContent, r.querySelector('.log-body').textContent]);",
        )
        .await;
    assert_eq!(
        logs,
        json!([
            ["gateway", "login request for mallory"],
            ["auth", "verifying credentials"],
            ["users", "slow query: SELECT users took 420 ms"],
            ["auth", "login ok for mallory"],
        ])
    );
    if std::env::var_os("TRACEWIRE_DOCS_SCREENSHOT").is_some() {
        // Details of the bottleneck, for the README.
        shop.wait("#span-rows .row[data-bottleneck]")
            .await
            .click()
            .await
            .expect("clicked");
        shop.wait("#details h2").await;
        shop.browser
            .client
            .set_window_size(1400, 1100)
            .await
            .expect("resized");
        let png = shop
            .browser
            .client
            .screenshot()
            .await
            .expect("a screenshot");
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::create_dir_all(&docs).expect("docs/");
        std::fs::write(docs.join("waterfall.png"), png).expect("docs/waterfall.png");
    }
    shop.stop("trace-slow-login").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn searches_by_attribute_duration_and_errors() {
    let shop = Shop::start().await;
    let found = |hash: &'static str| {
        let shop = &shop;
        async move {
            shop.goto(hash).await;
            let v = shop
                .js("return [...document.querySelectorAll('#results tr.result')].map(x => x.dataset.traceId);")
                .await;
            serde_json::from_value::<Vec<String>>(v).expect("ids")
        }
    };
    assert_eq!(
        found("#/search?attribute=enduser.id%3Dmallory&run=1").await,
        [SLOW_LOGIN]
    );
    assert_eq!(
        found("#/search?service=users&operation=SELECT+users&min_duration_ms=100&range=1h&run=1")
            .await,
        [SLOW_LOGIN]
    );
    assert_eq!(found("#/search?error=true&run=1").await, [FAILED_CHECKOUT]);
    assert_eq!(
        found("#/search?service=gateway&max_duration_ms=1&run=1").await,
        Vec::<String>::new()
    );

    // A custom time range, in the browser's local time: from an hour
    // ahead finds nothing, the last ten minutes find every trace.
    let every = found("#/search?limit=50&run=1").await;
    assert!(every.len() > 5, "{every:?}");
    let search_between = |from_min: i64, to_min: i64| {
        let shop = &shop;
        async move {
            shop.goto("#/search").await;
            shop.js(&format!(
                "const local = (m) => {{ const d = new Date(Date.now() + m * 60000);
                   return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); }};
                 document.getElementById('f-from').value = local({from_min});
                 document.getElementById('f-to').value = local({to_min});
                 document.getElementById('f-limit').value = '50';
                 document.getElementById('f-submit').click(); return true;"
            ))
            .await;
            let v = shop
                .until(
                    "return location.hash.includes('from=') && document.getElementById('view').dataset.ready === location.hash
                        ? [...document.querySelectorAll('#results tr.result')].map(x => x.dataset.traceId) : null;",
                )
                .await;
            serde_json::from_value::<Vec<String>>(v).expect("ids")
        }
    };
    assert_eq!(search_between(60, 120).await, Vec::<String>::new());
    let mut all = search_between(-10, 1).await;
    let mut every = every;
    all.sort();
    every.sort();
    assert_eq!(all, every);

    // The operations of a service are offered.
    shop.goto("#/search").await;
    shop.wait("#f-service option[value='users']")
        .await
        .click()
        .await
        .expect("users");
    let ops = shop
        .until("const o = [...document.querySelectorAll('#operations option')].map(o => o.value); return o.length ? o.sort() : null;")
        .await;
    assert_eq!(ops, json!(["GET /users/{id}", "SELECT users"]));

    // The failed checkout: its error spans are marked.
    shop.goto(&format!("#/trace/{FAILED_CHECKOUT}")).await;
    shop.wait("#span-rows .row").await;
    let errors = shop
        .js("return [...document.querySelectorAll('#span-rows .row[data-error] .err')].length;")
        .await;
    assert_eq!(errors, json!(5));
    shop.stop("trace-failed-checkout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn keyboard_moves_the_selection_and_enter_opens_details() {
    let shop = Shop::start().await;
    shop.goto(&format!("#/trace/{SLOW_LOGIN}")).await;
    let rows = shop.wait("#span-rows .row").await;
    let _ = rows;
    // The list has the focus, visibly.
    let focused = shop.js("return document.activeElement.id;").await;
    assert_eq!(focused, json!("span-rows"));
    let list = shop.wait("#span-rows").await;
    let down = String::from(char::from(Key::Down));
    // The first Down selects the first row.
    for _ in 0..4 {
        list.send_keys(&down).await.expect("down");
    }
    list.send_keys(&String::from(char::from(Key::Up)))
        .await
        .expect("up");
    // Keyboard focus is outlined.
    let outline = shop
        .js(
            "const a = document.activeElement; const s = getComputedStyle(a);
             return [a.id, a.matches(':focus-visible'), s.outlineStyle, s.outlineWidth];",
        )
        .await;
    assert_eq!(outline, json!(["span-rows", true, "solid", "3px"]));
    let selected = shop
        .js("return [...document.querySelectorAll('#span-rows .row[aria-selected=true]')].map(r => r.dataset.name);")
        .await;
    assert_eq!(selected, json!(["POST /verify"]));
    assert_eq!(
        shop.js(
            "return document.getElementById('span-rows').getAttribute('aria-activedescendant');"
        )
        .await,
        json!("span-row-2")
    );
    list.send_keys(&String::from(char::from(Key::Enter)))
        .await
        .expect("enter");
    let title = shop.wait("#details h2").await.text().await.expect("text");
    assert_eq!(title, "POST /verify");
    let details = shop.wait("#details").await.text().await.expect("text");
    assert!(
        details.contains("http.route") && details.contains("/verify"),
        "{details}"
    );
    assert!(details.contains("host.name"), "the resource: {details}");

    // A click opens the bottleneck's details.
    shop.wait("#span-rows .row[data-bottleneck]")
        .await
        .click()
        .await
        .expect("clicked");
    let details = shop
        .until("const h = document.querySelector('#details h2'); return h && h.textContent === 'SELECT users' ? document.getElementById('details').innerText : null;")
        .await;
    let details = details.as_str().unwrap_or_default().to_owned();
    assert!(
        details.contains("postgresql") && details.contains("the bottleneck"),
        "{details}"
    );

    // Every text on a service colour, and the marks, are readable:
    // WCAG contrast of at least 4.5:1, computed from the page's styles.
    let ratios = shop
        .js(r"
            const rgb = (c) => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
            const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
            const ratio = (a, b) => { const [h, l] = [lum(rgb(a)), lum(rgb(b))].sort((x, y) => y - x); return (h + 0.05) / (l + 0.05); };
            const out = [...document.querySelectorAll('.chip, .bneck')].map(e => {
                const s = getComputedStyle(e); return ratio(s.color, s.backgroundColor); });
            // The whole palette, as the page would use it for more services.
            for (const bg of window.tracewire.palette) {
                const c = document.createElement('span'); c.className = 'chip'; c.style.background = bg; c.style.color = window.tracewire.text;
                document.body.append(c); const s = getComputedStyle(c); out.push(ratio(s.color, s.backgroundColor)); c.remove();
            }
            return out;")
        .await;
    let ratios: Vec<f64> = serde_json::from_value(ratios).expect("ratios");
    assert!(ratios.len() > 16, "{ratios:?}");
    for r in &ratios {
        assert!(*r >= 4.5, "contrast {r} < 4.5: {ratios:?}");
    }
    shop.stop("trace-keyboard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn a_consumers_link_leads_to_the_producer() {
    let shop = Shop::start().await;
    shop.goto(&format!("#/trace/{ANALYTICS}")).await;
    shop.wait("#span-rows .row")
        .await
        .click()
        .await
        .expect("clicked");
    let link = shop.wait("#details a.span-link").await;
    link.click().await.expect("followed");
    shop.ready().await;
    let hash = shop.js("return location.hash;").await;
    assert_eq!(
        hash,
        json!(format!(
            "#/trace/{CHECKOUT}?span={}",
            otlp::span_hex(PRODUCER_SPAN)
        ))
    );
    let selected = shop
        .js("return [...document.querySelectorAll('#span-rows .row[aria-selected=true]')].map(r => [r.dataset.name, r.dataset.spanId]);")
        .await;
    let title = shop.wait("#details h2").await.text().await.expect("text");
    assert_eq!(title, "order.created publish");
    assert_eq!(
        selected,
        json!([["order.created publish", otlp::span_hex(PRODUCER_SPAN)]])
    );
    shop.stop("trace-followed-link").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn the_comparison_ranks_select_users_first() {
    let shop = Shop::start().await;
    shop.goto(&format!("#/compare?a={}&b={SLOW_LOGIN}", LOGINS[0]))
        .await;
    shop.wait("table.slower tbody tr").await;
    let slower = shop
        .js("return [...document.querySelectorAll('table.slower tbody tr')].map(r => r.dataset.name);")
        .await;
    let slower: Vec<String> = serde_json::from_value(slower).expect("names");
    assert_eq!(
        slower.first().map(String::as_str),
        Some("SELECT users"),
        "{slower:?}"
    );
    // The same ranking as the CLI's diff.
    let diff = shop
        .running
        .api(&format!("/api/compare?a={}&b={SLOW_LOGIN}", LOGINS[0]))
        .await;
    let cli: Vec<String> = diff["slower"]
        .as_array()
        .expect("slower")
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(slower, cli);
    // Highlighted in both waterfalls.
    for side in ["#cmp-a-rows", "#cmp-b-rows"] {
        let marked = shop
            .js(&format!("return [...document.querySelectorAll('{side} .row.slower')].map(r => r.dataset.name);"))
            .await;
        let marked: Vec<String> = serde_json::from_value(marked).expect("names");
        assert!(
            marked.iter().any(|n| n == "SELECT users"),
            "{side}: {marked:?}"
        );
        assert_eq!(shop.rows(side).await, expected_login_rows());
    }
    shop.browser.screenshot("compare-logins").await;
    // A bad id: the reason, and the form to fix it.
    shop.goto(&format!("#/compare?a=nothex&b={SLOW_LOGIN}"))
        .await;
    let alert = shop
        .js("const e = document.querySelector('[role=alert]'); return [e && e.textContent, !!document.getElementById('cmp-a')];")
        .await;
    assert_eq!(
        alert,
        json!(["Cannot compare: a trace id is 32 hexadecimal digits", true])
    );
    shop.stop("compare-bad-id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn the_service_map_shows_the_calls() {
    let shop = Shop::start().await;
    shop.goto("#/map").await;
    shop.wait("svg.map g.edge").await;
    let edges = shop
        .js("return [...document.querySelectorAll('svg.map g.edge')].map(e =>
               [e.dataset.caller, e.dataset.callee, e.dataset.protocol, Number(e.dataset.calls), Number(e.dataset.errors),
                document.querySelector(`g.edge-label[data-edge=${e.id}] text.calls`).textContent]).sort();")
        .await;
    let edges: Vec<(String, String, String, u64, u64, String)> =
        serde_json::from_value(edges).expect("edges");
    let find = |caller: &str, callee: &str| {
        edges
            .iter()
            .find(|e| e.0 == caller && e.1 == callee)
            .unwrap_or_else(|| panic!("no edge {caller} → {callee} in {edges:?}"))
            .clone()
    };
    let e = find("gateway", "auth");
    assert_eq!(
        (e.2.as_str(), e.3, e.4, e.5.as_str()),
        ("http", 5, 0, "5 calls · http")
    );
    assert_eq!(find("auth", "users").3, 5);
    assert_eq!(find("users", "postgresql").3, 5);
    let e = find("gateway", "orders");
    assert_eq!((e.2.as_str(), e.3, e.4), ("http", 2, 1));
    let e = find("orders", "payments");
    assert_eq!((e.2.as_str(), e.3, e.4), ("grpc", 2, 1));
    let e = find("orders", "notifications");
    assert_eq!((e.2.as_str(), e.3), ("kafka", 1));
    // Layered by call depth: gateway left of auth left of users.
    let x = |s: &str| {
        format!(
            "return Number(document.querySelector(\"svg.map g.node[data-service='{s}'] rect\").getAttribute('x'));"
        )
    };
    let (g, a, u) = (
        shop.js(&x("gateway")).await,
        shop.js(&x("auth")).await,
        shop.js(&x("users")).await,
    );
    assert!(
        g.as_f64() < a.as_f64() && a.as_f64() < u.as_f64(),
        "{g} {a} {u}"
    );
    shop.stop("service-map").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn a_10000_span_trace_keeps_only_the_rows_in_sight() {
    const BIG: &str = "40000000000000000000000000000001";
    let running = Running::start().await;
    let t0 = base_time();
    // A root with 99 calls of 100 queries each: 10,000 spans.
    let mut spans = vec![span(
        BIG,
        1,
        0,
        "gateway",
        "GET /report",
        SERVER,
        (t0, t0 + 2_000 * MS),
        &[],
    )];
    for call in 0..99u64 {
        let id = 2 + call * 101;
        let start = t0 + call * 20 * MS;
        spans.push(span(
            BIG,
            id,
            1,
            "reports",
            "render part",
            SERVER,
            (start, start + 19 * MS),
            &[],
        ));
        for q in 0..100u64 {
            let s = start + q * 185_000;
            spans.push(span(
                BIG,
                id + 1 + q,
                id,
                "reports",
                "SELECT rows",
                CLIENT,
                (s, s + 150_000),
                &[],
            ));
        }
    }
    assert_eq!(spans.len(), 10_000);
    running.send_spans(&spans).await;
    let shop = Shop {
        running,
        browser: Browser::start().await,
    };
    shop.goto(&format!("#/trace/{BIG}")).await;
    let in_dom = shop
        .js("return document.querySelectorAll('#span-rows .row').length;")
        .await;
    let in_dom = in_dom.as_u64().unwrap_or(0);
    assert!(in_dom > 10 && in_dom < 200, "{in_dom} rows in the page");
    // End selects the last span in tree order, scrolled into sight.
    let list = shop.wait("#span-rows").await;
    list.send_keys(&String::from(char::from(Key::End)))
        .await
        .expect("end");
    let last = shop
        .until("const r = document.querySelector('#span-rows .row[aria-selected=true]');
                return r ? [Number(r.dataset.index), r.dataset.name, document.querySelectorAll('#span-rows .row').length] : null;")
        .await;
    assert_eq!(last[0], json!(9_999));
    assert_eq!(last[1], json!("SELECT rows"));
    assert!(last[2].as_u64() < Some(200), "{last}");
    shop.stop("trace-10000-spans").await;
}
