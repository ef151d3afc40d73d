//! sqlx: a SQLite in-memory point query through `tracewire_sqlx`'s traced
//! pool against the same query through a plain sqlx pool, and the SQL
//! sanitizer on a ~200-character query, uncached and cached.
//!
//! Queries: both pools hold the same `users` table (1,000 rows) in their
//! own in-memory database (one connection each), and both run under the
//! same subscriber (`TracewireLayer`, always sampled, no-op processor)
//! inside a request span, so the traced pool's query spans are recorded
//! in full. sqlx's SQLite driver answers from a worker thread, so a round
//! ([`QUERIES`] queries) is timed in wall time and the two pools take
//! turns, round by round ([`tracewire_benches::alternate`]).
//!
//! Sanitizer: single-threaded, criterion in thread CPU time.

use std::hint::black_box;

use criterion::Criterion;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use tracewire::TracewireLayer;
use tracewire::processor::NoopProcessor;
use tracewire::sampling::AlwaysOn;
use tracewire_benches::ThreadCpuTime;
use tracewire_benches::alternate::{self, Settings, Variant};
use tracewire_benches::report::{self, Bar, Check};
use tracewire_sqlx::TracedPool;
use tracewire_sqlx::sanitize::{Dialect, QueryCache, analyze};
use tracing::{Dispatch, Instrument as _};
use tracing_subscriber::prelude::*;

/// Point queries per round.
const QUERIES: u64 = 500;
const ROWS: i64 = 1000;
const POINT_QUERY: &str = "SELECT name FROM users WHERE id = ?";

/// 205 characters, literals of every common kind.
const LONG_QUERY: &str = "SELECT o.id, o.total, c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'shipped' AND o.created_at > '2024-01-01' AND o.total >= 100.50 ORDER BY o.created_at DESC LIMIT 50";

async fn pool_with_users() -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("an in-memory database");
    sqlx::raw_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("the table");
    let mut tx = pool.begin().await.expect("a transaction");
    for id in 0..ROWS {
        sqlx::query("INSERT INTO users (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(format!("user {id}"))
            .execute(&mut *tx)
            .await
            .expect("a row");
    }
    tx.commit().await.expect("the rows");
    pool
}

fn queries(settings: &Settings) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let plain = runtime.block_on(pool_with_users());
    let traced = TracedPool::new(runtime.block_on(pool_with_users()));
    let dispatch = Dispatch::new(
        tracing_subscriber::registry().with(
            TracewireLayer::builder()
                .sampler(AlwaysOn)
                .processor(NoopProcessor)
                .build(),
        ),
    );
    let round = |traced_pool: bool| {
        tracing::dispatcher::with_default(&dispatch, || {
            runtime.block_on(
                async {
                    for i in 0..QUERIES {
                        let id = (i as i64 * 7) % ROWS;
                        let query = sqlx::query_scalar::<_, String>(POINT_QUERY).bind(id);
                        let name = if traced_pool {
                            query.fetch_one(&traced).await
                        } else {
                            query.fetch_one(&plain).await
                        };
                        assert_eq!(name.expect("the row").len(), format!("user {id}").len());
                    }
                }
                .instrument(tracing::info_span!("request")),
            );
        });
    };
    let mut variants = [
        Variant::new("traced_pool", || round(true)),
        Variant::new("plain_pool", || round(false)),
    ];
    alternate::run(settings, "sqlx", QUERIES, &mut variants);
    alternate::throughput_row(
        "SQLite in-memory point query: traced pool / plain sqlx pool (time)",
        &variants[0],
        &variants[1],
        Bar::TimeAtMost(1.10),
    )
}

fn sanitizer(c: &mut Criterion<ThreadCpuTime>) {
    assert!(
        (190..=220).contains(&LONG_QUERY.len()),
        "{}",
        LONG_QUERY.len()
    );
    let info = analyze(LONG_QUERY, Dialect::Sqlite);
    assert!(!info.text().contains("shipped"), "{}", info.text());
    let mut g = c.benchmark_group("sanitize");
    g.bench_function("uncached", |b| {
        b.iter(|| analyze(black_box(LONG_QUERY), Dialect::Sqlite));
    });
    let cache = QueryCache::new(Dialect::Sqlite, tracewire_sqlx::DEFAULT_CACHE_CAPACITY);
    let _ = cache.get(LONG_QUERY);
    g.bench_function("cached", |b| b.iter(|| cache.get(black_box(LONG_QUERY))));
    g.finish();
}

const CHECKS: &[Check] = &[
    Check::absolute(
        "sanitizer, ~200-character query, uncached",
        "sanitize/uncached",
        Bar::NanosUnder(1000.0),
    ),
    Check::absolute(
        "sanitizer, same query, cached",
        "sanitize/cached",
        Bar::NanosUnder(50.0),
    ),
];

fn main() {
    report::start();
    let settings = Settings::from_args();
    let mut rows = String::new();
    if settings.wants("sqlx/") {
        rows.push_str(&queries(&settings));
    }
    let mut c = tracewire_benches::criterion_cpu();
    sanitizer(&mut c);
    c.final_summary();
    rows.push_str(&report::rows(CHECKS));
    report::print_rows("sqlx (issue 5)", &rows);
}
