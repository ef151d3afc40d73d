//! The load the launcher sends through the gateway: logins whose user is
//! cached, logins of users nobody asked for yet (a cache miss and a full
//! table scan), logins that meet an overloaded auth instance (the gateway
//! retries), checkouts that pay, and checkouts whose card is declined (a
//! checkout authenticates the customer through auth, then orders).

use std::collections::HashSet;
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::BoxError;
use crate::db::email_of;
use crate::services::{DECLINED_CARD, FAULT_HEADER, FLAKY_AUTH, TRACE_RESPONSE};

/// A card the processor accepts.
const GOOD_CARD: &str = "4242424242424242";
/// Requests in flight at once.
const CONCURRENCY: usize = 4;

/// What a request is meant to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// A login whose user is in the user service's cache.
    Login,
    /// A login of a user not cached: the slow query.
    LoginCacheMiss,
    /// A login whose first attempt auth sheds with 503; the gateway retries.
    LoginRetried,
    /// An order that is paid and notified.
    Order,
    /// An order whose card is declined.
    OrderPaymentFails,
}

impl Scenario {
    /// Ten requests: the mix repeated until the count is reached.
    const MIX: [Scenario; 10] = [
        Scenario::Login,
        Scenario::Order,
        Scenario::LoginCacheMiss,
        Scenario::Login,
        Scenario::LoginRetried,
        Scenario::Order,
        Scenario::OrderPaymentFails,
        Scenario::Login,
        Scenario::Order,
        Scenario::LoginCacheMiss,
    ];

    /// The status the gateway should answer.
    pub(crate) const fn expected_status(self) -> u16 {
        match self {
            Scenario::Login | Scenario::LoginCacheMiss | Scenario::LoginRetried => 200,
            Scenario::Order => 201,
            Scenario::OrderPaymentFails => 502,
        }
    }

    pub(crate) const fn label(self) -> &'static str {
        match self {
            Scenario::Login => "login",
            Scenario::LoginCacheMiss => "login (cache miss)",
            Scenario::LoginRetried => "login (auth retried)",
            Scenario::Order => "order",
            Scenario::OrderPaymentFails => "order (card declined)",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) n: u32,
    pub(crate) scenario: Scenario,
    path: &'static str,
    body: serde_json::Value,
}

/// `requests` requests over a table of `users` rows of which the first
/// `hot` are cached. Cache misses pick distinct users outside the hot set.
pub(crate) fn plan(requests: u32, users: u32, hot: u32) -> Vec<Planned> {
    let mut missed = HashSet::new();
    let mut cold_user = || {
        // Distinct while there are enough cold users; repeats become hits.
        let mut id = fastrand::u32(hot + 1..=users);
        for _ in 0..16 {
            if missed.insert(id) {
                break;
            }
            id = fastrand::u32(hot + 1..=users);
        }
        id
    };
    (1..=requests)
        .zip(Scenario::MIX.into_iter().cycle())
        .map(|(n, scenario)| {
            let hot_user = fastrand::u32(1..=hot);
            let amount = fastrand::i64(500..=20_000);
            let (path, body) = match scenario {
                Scenario::Login | Scenario::LoginRetried => (
                    "/api/login",
                    serde_json::json!({ "email": email_of(hot_user) }),
                ),
                Scenario::LoginCacheMiss => (
                    "/api/login",
                    serde_json::json!({ "email": email_of(cold_user()) }),
                ),
                Scenario::Order | Scenario::OrderPaymentFails => (
                    "/api/orders",
                    serde_json::json!({
                        "email": email_of(hot_user),
                        "amount_cents": amount,
                        "card": if scenario == Scenario::Order { GOOD_CARD } else { DECLINED_CARD },
                    }),
                ),
            };
            Planned {
                n,
                scenario,
                path,
                body,
            }
        })
        .collect()
}

/// What happened to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub(crate) n: u32,
    pub(crate) scenario: Scenario,
    /// The gateway's status, or none when it did not answer.
    pub(crate) status: Option<u16>,
    pub(crate) duration_ms: f64,
    /// From the gateway's `traceresponse` header.
    pub(crate) trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

impl Outcome {
    /// Whether the gateway answered what the scenario expects.
    pub(crate) fn as_expected(&self) -> bool {
        self.status == Some(self.scenario.expected_status())
    }
}

/// The trace id in a `traceresponse` (or `traceparent`) value.
fn trace_id_of(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    (trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| trace_id.to_ascii_lowercase())
}

async fn send(client: &reqwest::Client, gateway: &str, planned: Planned) -> Outcome {
    let mut request = client
        .post(format!("{gateway}{}", planned.path))
        .json(&planned.body);
    if planned.scenario == Scenario::LoginRetried {
        request = request.header(FAULT_HEADER, FLAKY_AUTH);
    }
    let started = Instant::now();
    let result = request.send().await;
    let duration_ms = started.elapsed().as_secs_f64() * 1e3;
    let (status, trace_id, error) = match result {
        Ok(response) => (
            Some(response.status().as_u16()),
            response
                .headers()
                .get(TRACE_RESPONSE)
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id_of),
            None,
        ),
        Err(error) => (None, None, Some(error.to_string())),
    };
    Outcome {
        n: planned.n,
        scenario: planned.scenario,
        status,
        duration_ms,
        trace_id,
        error,
    }
}

/// Sends `plan` to the gateway, a few requests at a time; `each` sees every
/// outcome as it arrives. Outcomes come back in plan order.
pub(crate) async fn run(
    gateway: &str,
    plan: Vec<Planned>,
    mut each: impl FnMut(&Outcome),
) -> Result<Vec<Outcome>, BoxError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut outcomes: Vec<Outcome> = futures_util::stream::iter(plan)
        .map(|planned| send(&client, gateway, planned))
        .buffer_unordered(CONCURRENCY)
        .inspect(|outcome| each(outcome))
        .collect()
        .await;
    outcomes.sort_by_key(|o| o.n);
    Ok(outcomes)
}

/// Writes the outcomes, one JSON object per line.
pub(crate) fn write_outcomes(path: &Path, outcomes: &[Outcome]) -> Result<(), BoxError> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for outcome in outcomes {
        serde_json::to_writer(&mut out, outcome)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_requests_cover_every_scenario() {
        let plan = plan(10, 10_000, 100);
        let kinds: HashSet<_> = plan.iter().map(|p| p.scenario).collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert_eq!(
            plan.iter().map(|p| p.n).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn cache_misses_ask_for_distinct_cold_users() {
        let plan = plan(200, 10_000, 100);
        let emails: Vec<_> = plan
            .iter()
            .filter(|p| p.scenario == Scenario::LoginCacheMiss)
            .map(|p| p.body["email"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(emails.len(), 40);
        assert_eq!(emails.iter().collect::<HashSet<_>>().len(), 40);
        for email in &emails {
            let id: u32 = email
                .trim_start_matches("user")
                .trim_end_matches("@shop.example")
                .parse()
                .unwrap();
            assert!((101..=10_000).contains(&id), "{email}");
        }
    }

    #[test]
    fn trace_ids_are_read_from_traceresponse() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00",
            "00-xyz-00f067aa0ba902b7-01",
            "00-4bf92f35-00f0-01",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
    }
}
