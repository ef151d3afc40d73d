//! `list`, `view`, `critical-path` and `diff` on the fixed files, text and
//! JSON, with exact expected results.

use serde_json::json;

use crate::support::{A, B, tracewire, with_shop};

#[test]
fn list_shows_every_trace_merged_across_service_files() {
    let mut args = with_shop(&["list"]);
    args.push("skew.jsonl");
    assert_eq!(
        tracewire(&args).ok(),
        "\
TRACE ID                          START (UTC)              DURATION  SPANS  ERRORS  ROOT                     SERVICES
4bf92f3577b34da6a3ce929d0e0e4736  2023-11-14 22:13:20.000   110.0ms     13       0  gateway: POST /checkout  gateway, auth, orders, payments, notifications
5a1c3b0d2e9f4a8b9c7d6e5f4a3b2c1d  2023-11-14 22:13:20.000   170.0ms     14       1  gateway: POST /checkout  gateway, auth, orders, payments, notifications
4bf9aaaa00000000000000000000c0de  2023-11-14 22:13:20.008    52.0ms      6       0  web: GET /status         web, backend, worker
"
    );
}

#[test]
fn list_json() {
    assert_eq!(
        tracewire(&["list", "--json", "skew.jsonl"]).json(),
        json!({"traces": [{
            "trace_id": "4bf9aaaa00000000000000000000c0de",
            "start": "2023-11-14T22:13:20.008000000Z",
            "duration_ns": 52_000_000,
            "span_count": 6,
            "error_count": 0,
            "orphan_count": 1,
            "services": ["web", "backend", "worker"],
            "root": {
                "span_id": "c000000000000001",
                "service": "web",
                "name": "GET /status",
                "duration_ns": 40_000_000,
                "orphan": false,
            },
        }]})
    );
}

#[test]
fn only_some_services_loaded_leaves_orphans_at_the_top() {
    let out = tracewire(&["list", "orders.jsonl", "payments.jsonl"]).ok();
    assert!(
        out.contains("orders: POST /orders (parent not loaded)"),
        "{out}"
    );
}

#[test]
fn view_is_a_waterfall_in_tree_order() {
    assert_eq!(
        tracewire(&with_shop(&["view", "4bf92"])).ok(),
        "\
trace 4bf92f3577b34da6a3ce929d0e0e4736 · 2023-11-14 22:13:20.000 UTC · 110.0ms · 13 spans · 5 services · 0 errors
SERVICE        OPERATION                       START  DURATION  TIMELINE
gateway        POST /checkout                    0ns   100.0ms  |████████████████████████████████████    |
gateway          POST                          2.0ms    10.0ms  | ███                                    |
auth               POST /verify                3.0ms     8.0ms  | ███                                    |
auth                 SELECT users              4.0ms     5.0ms  | ██                                     |
gateway          POST                         15.0ms    80.0ms  |     ██████████████████████████████     |
orders             POST /orders               16.0ms    78.0ms  |      ████████████████████████████      |
orders               SELECT products          20.0ms    10.0ms  |       ████                             |
orders               SELECT products          30.0ms    10.0ms  |           ████                         |
orders               POST                     42.0ms    48.0ms  |               ██████████████████       |
payments               POST /charge           43.0ms    46.0ms  |                ████████████████        |
payments                 charge card          45.0ms    40.0ms  |                ███████████████         |  ◀ bottleneck (self 40.0ms)
orders               send order.created       90.0ms     2.0ms  |                                 █      |
notifications          process order.created  93.0ms    17.0ms  |                                  ██████|
critical path 100.0ms; bottleneck payments: charge card (self 40.0ms, 40.0%)
"
    );
}

#[test]
fn view_marks_clock_skew_zero_durations_and_orphans() {
    assert_eq!(
        tracewire(&["view", "4bf9a", "skew.jsonl", "--width", "20"]).ok(),
        "\
trace 4bf9aaaa00000000000000000000c0de · 2023-11-14 22:13:20.008 UTC · 52.0ms · 6 spans · 3 services · 0 errors
SERVICE  OPERATION          START  DURATION  TIMELINE
web      GET /status        2.0ms    40.0ms  | ███████████████    |
web        GET              4.0ms    28.0ms  |  ██████████        |
backend      GET /health      0ns    28.0ms  |  █████████         |  ~ starts 4.0ms before its parent (clock skew?)
backend        check disk   1.0ms    21.0ms  |  ██████            |  ◀ bottleneck (self 18.0ms)
web        cache hit       37.0ms       0ns  |              ▏     |
worker   refresh cache     40.0ms    12.0ms  |               █████|  ? parent 00000000000000ff not in trace
critical path 40.0ms; bottleneck backend: check disk (self 18.0ms, 45.0%)
1 span whose parent is not in the loaded input, shown at the top level
"
    );
}

#[test]
fn view_marks_errors_with_their_message() {
    let out = tracewire(&with_shop(&["view", B])).ok();
    let line = out.lines().find(|l| l.contains("✗")).expect("an error row");
    assert!(
        line.starts_with("payments                 charge card"),
        "{line}"
    );
    assert!(
        line.ends_with("◀ bottleneck (self 60.0ms)  ✗ error: card declined"),
        "{line}"
    );
}

#[test]
fn colours_follow_the_color_option() {
    let args = |color: &'static str| with_shop(&["view", A, "--color", color]);
    let always = tracewire(&args("always")).ok();
    assert!(always.contains("\x1b[36mgateway"), "{always}");
    assert!(always.contains("\x1b[1m◀ bottleneck"), "{always}");
    // The tests capture stdout: not a terminal, so `auto` means plain.
    let auto = tracewire(&args("auto")).ok();
    assert!(!auto.contains('\x1b'));
    assert_eq!(auto, tracewire(&args("never")).ok());
    assert_eq!(auto, tracewire(&with_shop(&["view", A])).ok());
}

#[test]
fn view_json_lists_spans_in_tree_order() {
    let out = tracewire(&["view", "4bf9a", "skew.jsonl", "--json"]).json();
    assert_eq!(out["trace_id"], "4bf9aaaa00000000000000000000c0de");
    let spans = out["spans"].as_array().unwrap();
    let rows: Vec<(&str, u64, u64, u64, u64, bool)> = spans
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["depth"].as_u64().unwrap(),
                s["start_offset_ns"].as_u64().unwrap() / 1_000_000,
                s["duration_ns"].as_u64().unwrap() / 1_000_000,
                s["clock_skew_ns"].as_u64().unwrap() / 1_000_000,
                s["orphan"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("GET /status", 0, 2, 40, 0, false),
            ("GET", 1, 4, 28, 0, false),
            ("GET /health", 2, 0, 28, 4, false),
            ("check disk", 3, 1, 21, 0, false),
            ("cache hit", 1, 37, 0, 0, false),
            ("refresh cache", 0, 40, 12, 0, true),
        ]
    );
    assert_eq!(
        spans[0],
        json!({
            "span_id": "c000000000000001",
            "parent_span_id": null,
            "service": "web",
            "name": "GET /status",
            "kind": "server",
            "depth": 0,
            "start": "2023-11-14T22:13:20.010000000Z",
            "start_offset_ns": 2_000_000,
            "duration_ns": 40_000_000,
            "status": "unset",
            "error_message": null,
            "orphan": false,
            "clock_skew_ns": 0,
            "critical_path_self_ns": 12_000_000,
            "bottleneck": false,
            "attributes": {
                "http.request.method": "GET",
                "http.route": "/status",
                "http.response.status_code": 200,
            },
        })
    );
    assert_eq!(spans[3]["bottleneck"], true);
    assert_eq!(spans[5]["critical_path_self_ns"], json!(null));
}

#[test]
fn critical_path_of_the_fast_checkout() {
    assert_eq!(
        tracewire(&with_shop(&["critical-path", "4bf92f"])).ok(),
        "\
critical path of trace 4bf92f3577b34da6a3ce929d0e0e4736: gateway: POST /checkout, 100.0ms
  SELF  SHARE  DURATION  SPAN
10.0ms  10.0%   100.0ms  gateway: POST /checkout
 2.0ms   2.0%    10.0ms    gateway: POST
 3.0ms   3.0%     8.0ms      auth: POST /verify
 5.0ms   5.0%     5.0ms        auth: SELECT users
 2.0ms   2.0%    80.0ms    gateway: POST
 8.0ms   8.0%    78.0ms      orders: POST /orders
10.0ms  10.0%    10.0ms        orders: SELECT products
10.0ms  10.0%    10.0ms        orders: SELECT products
 2.0ms   2.0%    48.0ms        orders: POST
 6.0ms   6.0%    46.0ms          payments: POST /charge
40.0ms  40.0%    40.0ms            payments: charge card  ◀ bottleneck
 2.0ms   2.0%     2.0ms        orders: send order.created
bottleneck: payments: charge card, 40.0ms of 100.0ms (40.0%)
"
    );
}

#[test]
fn critical_path_json_of_the_slow_checkout() {
    let out = tracewire(&with_shop(&["critical-path", "5a1c", "--json"])).json();
    let path: Vec<(&str, &str, u64, u64)> = out["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
                s["depth"].as_u64().unwrap(),
                s["self_ns"].as_u64().unwrap() / 1_000_000,
            )
        })
        .collect();
    assert_eq!(
        path,
        [
            ("gateway", "POST /checkout", 0, 10),
            ("gateway", "POST", 1, 2),
            ("auth", "POST /verify", 2, 5),
            ("auth", "SELECT users", 3, 3),
            ("gateway", "POST", 1, 2),
            ("orders", "POST /orders", 2, 9),
            ("orders", "SELECT products", 3, 10),
            ("orders", "cache get", 3, 2),
            ("orders", "POST", 3, 2),
            ("payments", "POST /charge", 4, 8),
            ("payments", "charge card", 5, 60),
            ("payments", "charge card", 5, 45),
            ("orders", "send order.created", 3, 2),
        ]
    );
    assert_eq!(out["total_ns"], 160_000_000);
    assert_eq!(out["root_span_id"], "b000000000000001");
    assert_eq!(
        out["bottleneck"],
        json!({
            "span_id": "b00000000000000b",
            "service": "payments",
            "name": "charge card",
            "self_ns": 60_000_000,
            "share": 0.375,
        })
    );
    assert_eq!(
        out["path"][10],
        json!({
            "span_id": "b00000000000000b",
            "service": "payments",
            "name": "charge card",
            "depth": 5,
            "duration_ns": 60_000_000,
            "self_ns": 60_000_000,
            "share": 0.375,
            "bottleneck": true,
            "error": true,
        })
    );
    // The sections cover the root's 160 ms once, in time order.
    let sections: Vec<(&str, u64, u64)> = out["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["start_offset_ns"].as_u64().unwrap() / 1_000_000,
                s["end_offset_ns"].as_u64().unwrap() / 1_000_000,
            )
        })
        .collect();
    assert_eq!(
        sections,
        [
            ("POST /checkout", 0, 2),
            ("POST", 2, 3),
            ("POST /verify", 3, 4),
            ("SELECT users", 4, 7),
            ("POST /verify", 7, 11),
            ("POST", 11, 12),
            ("POST /checkout", 12, 15),
            ("POST", 15, 16),
            ("POST /orders", 16, 20),
            ("SELECT products", 20, 30),
            ("cache get", 30, 32),
            ("POST /orders", 32, 35),
            ("POST", 35, 36),
            ("POST /charge", 36, 38),
            ("charge card", 38, 98),
            ("POST /charge", 98, 100),
            ("charge card", 100, 145),
            ("POST /charge", 145, 149),
            ("POST", 149, 150),
            ("send order.created", 150, 152),
            ("POST /orders", 152, 154),
            ("POST", 154, 155),
            ("POST /checkout", 155, 160),
        ]
    );
}

#[test]
fn diff_shows_slower_faster_missing_and_new_spans() {
    assert_eq!(
        tracewire(&with_shop(&["diff", A, B])).ok(),
        "\
diff A 4bf92f3577b34da6a3ce929d0e0e4736 → B 5a1c3b0d2e9f4a8b9c7d6e5f4a3b2c1d
duration: 110.0ms → 170.0ms (+60.0ms, +54.5%)
spans: 13 → 14; matched 12: 6 slower, 1 faster, 5 unchanged; 1 missing from B, 2 new in B

slower in B, largest first:
  +67.0ms  +139.6%  48.0ms → 115.0ms   orders: POST  (in gateway: POST /checkout › gateway: POST #2 › orders: POST /orders)
  +67.0ms  +145.7%  46.0ms → 113.0ms   payments: POST /charge  (in gateway: POST /checkout › gateway: POST #2 › orders: POST /orders › orders: POST)
  +60.0ms   +60.0%  100.0ms → 160.0ms  gateway: POST /checkout
  +60.0ms   +75.0%  80.0ms → 140.0ms   gateway: POST #2  (in gateway: POST /checkout)
  +60.0ms   +76.9%  78.0ms → 138.0ms   orders: POST /orders  (in gateway: POST /checkout › gateway: POST #2)
  +20.0ms   +50.0%  40.0ms → 60.0ms    payments: charge card  (in gateway: POST /checkout › gateway: POST #2 › orders: POST /orders › orders: POST › payments: POST /charge)  ✗ fails in B

faster in B, largest first:
  -2.0ms  -40.0%  5.0ms → 3.0ms  auth: SELECT users  (in gateway: POST /checkout › gateway: POST › auth: POST /verify)

missing from B (only in A):
  10.0ms  orders: SELECT products #2  (in gateway: POST /checkout › gateway: POST #2 › orders: POST /orders)

new in B (only in B):
   2.0ms  orders: cache get  (in gateway: POST /checkout › gateway: POST #2 › orders: POST /orders)
  45.0ms  payments: charge card #2  (in gateway: POST /checkout › gateway: POST #2 › orders: POST /orders › orders: POST › payments: POST /charge)
"
    );
}

#[test]
fn diff_min_delta_hides_small_changes() {
    let out = tracewire(&with_shop(&["diff", A, B, "--min-delta", "61ms"])).ok();
    assert!(
        out.contains("matched 12: 2 slower, 0 faster, 10 unchanged;"),
        "{out}"
    );
    assert!(out.contains("slower in B by 61.0ms or more, largest first:"));
    assert!(!out.contains("faster in B"));
}

#[test]
fn diff_json() {
    let out = tracewire(&with_shop(&["diff", "5a1c", "4bf92", "--json"])).json();
    let expected_path = vec![
        json!({"service": "gateway", "name": "POST /checkout", "occurrence": 1}),
        json!({"service": "gateway", "name": "POST", "occurrence": 2}),
        json!({"service": "orders", "name": "POST /orders", "occurrence": 1}),
    ];
    // B against A: everything reversed.
    assert_eq!(out["a"]["trace_id"], B);
    assert_eq!(out["b"]["trace_id"], A);
    assert_eq!(out["duration_delta_ns"], -60_000_000);
    assert_eq!(
        out["totals"],
        json!({"matched": 12, "slower": 1, "faster": 6, "unchanged": 5, "missing": 2, "new": 1})
    );
    assert_eq!(
        out["new"],
        json!([{
            "service": "orders",
            "name": "SELECT products",
            "occurrence": 2,
            "ancestors": expected_path,
            "path": "gateway: POST /checkout › gateway: POST #2 › orders: POST /orders › orders: SELECT products #2",
            "span_id": "a000000000000008",
            "duration_ns": 10_000_000,
            "error": false,
        }])
    );
    let missing: Vec<&str> = out["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "gateway: POST /checkout › gateway: POST #2 › orders: POST /orders › orders: cache get",
            "gateway: POST /checkout › gateway: POST #2 › orders: POST /orders › orders: POST › payments: POST /charge › payments: charge card #2",
        ]
    );
    assert_eq!(
        out["slower"],
        json!([{
            "service": "auth",
            "name": "SELECT users",
            "occurrence": 1,
            "ancestors": [
                {"service": "gateway", "name": "POST /checkout", "occurrence": 1},
                {"service": "gateway", "name": "POST", "occurrence": 1},
                {"service": "auth", "name": "POST /verify", "occurrence": 1},
            ],
            "path": "gateway: POST /checkout › gateway: POST › auth: POST /verify › auth: SELECT users",
            "a_span_id": "b000000000000004",
            "b_span_id": "a000000000000004",
            "a_duration_ns": 3_000_000,
            "b_duration_ns": 5_000_000,
            "delta_ns": 2_000_000,
            "relative": 2.0 / 3.0,
            "a_error": false,
            "b_error": false,
        }])
    );
    let faster = out["faster"].as_array().unwrap();
    assert_eq!(faster[0]["service"], "orders");
    assert_eq!(faster[0]["name"], "POST");
    assert_eq!(faster[0]["ancestors"], json!(expected_path));
    assert_eq!(faster[0]["delta_ns"], -67_000_000);
    assert_eq!(faster[0]["relative"], json!(-67.0 / 115.0));
    let faster: Vec<(&str, i64)> = faster
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["delta_ns"].as_i64().unwrap() / 1_000_000,
            )
        })
        .collect();
    assert_eq!(
        faster,
        [
            ("POST", -67),
            ("POST /charge", -67),
            ("POST /checkout", -60),
            ("POST", -60),
            ("POST /orders", -60),
            ("charge card", -20),
        ]
    );
}
