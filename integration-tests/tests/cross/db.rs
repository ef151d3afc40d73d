//! Queries inside axum handlers (issue 5): a reqwest client with the
//! middleware, inside a span of its own, calls over a real socket an axum
//! app with `TraceLayer::server()` whose handlers query through a
//! `tracewire_sqlx::TracedPool`. The query spans are CLIENT children of
//! the request's SERVER span, in the caller's trace.
//!
//! The same cases run for SQLite (in memory, always, through the
//! process-wide subscriber), PostgreSQL and MariaDB/MySQL (`#[ignore]`d:
//! run when asked for with `--run-ignored all`, as `.ci/test` does when
//! `TRACEWIRE_SQLX_DB_TESTS=1`, and failing when the server is
//! unreachable).

/// The cases, for one database: the attributes before `db:` go on every
/// test (`#[ignore = "needs …"]` for a server), `connect` gives a pool,
/// `subscriber` where the spans go;
/// `p1`/`p2` are the database's placeholders, `system`, `namespace` and
/// `address` the attributes its spans carry, `unique_code` the
/// `db.response.status_code` of a primary key violation.
macro_rules! db_cases {
    (
        $(#[$attr:meta])*
        db: $db:ty,
        connect: $connect:expr,
        subscriber: $subscriber:expr,
        p1: $p1:literal,
        p2: $p2:literal,
        system: $system:expr,
        namespace: $namespace:expr,
        address: $address:expr,
        unique_code: $unique_code:literal $(,)?
    ) => {
        use std::sync::Arc;
        use std::time::Duration;

        use axum::Router;
        use axum::extract::{Path, State};
        use axum::http::StatusCode;
        use axum::routing::get;
        use tracewire::{SpanData, SpanExt as _, SpanKind, Status, TraceId};
        use tracewire_sqlx::TracedPool;
        use tracewire_tower::TraceLayer;
        use tracing::Instrument as _;

        use crate::support::{self, child, int_attr, str_attr};

        const NAMES: [&str; 5] = ["ann", "bob", "cy", "dee", "eve"];

        fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
            sqlx::AssertSqlSafe(text)
        }

        /// The app's tables, named for this test only.
        #[derive(Clone)]
        struct Tables {
            users: Arc<str>,
            visits: Arc<str>,
        }

        #[derive(Clone)]
        struct App {
            pool: TracedPool<$db>,
            tables: Tables,
        }

        fn internal(_: sqlx::Error) -> StatusCode {
            StatusCode::INTERNAL_SERVER_ERROR
        }

        /// Looks the user up (a `SELECT` with a bind and a literal), records
        /// the visit (an `INSERT`) and counts it in a transaction; answers
        /// with the trace id the handler runs in and the user's name.
        async fn show_user(
            State(app): State<App>,
            Path(id): Path<i64>,
        ) -> Result<String, StatusCode> {
            let Tables { users, visits } = &app.tables;
            let name: Option<String> = sqlx::query_scalar(sql(format!(
                "SELECT name FROM {users} WHERE id = {} AND active = 1",
                $p1
            )))
            .bind(id)
            .fetch_optional(&app.pool)
            .await
            .map_err(internal)?;
            let name = name.ok_or(StatusCode::NOT_FOUND)?;
            sqlx::query(sql(format!(
                "INSERT INTO {visits} (user_id, source) VALUES ({}, 'web')",
                $p1
            )))
            .bind(id)
            .execute(&app.pool)
            .await
            .map_err(internal)?;
            let mut tx = app.pool.begin().await.map_err(internal)?;
            sqlx::query(sql(format!(
                "UPDATE {users} SET visits = visits + 1 WHERE id = {}",
                $p1
            )))
            .bind(id)
            .execute(&mut tx)
            .await
            .map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            let trace = tracewire::current_span_context()
                .map(|cx| cx.trace_id().to_string())
                .unwrap_or_default();
            Ok(format!("{trace} {name}"))
        }

        /// Creates a user; any database error (a taken id) is a 500.
        async fn create_user(
            State(app): State<App>,
            Path(id): Path<i64>,
            name: String,
        ) -> Result<StatusCode, StatusCode> {
            let users = &app.tables.users;
            sqlx::query(sql(format!(
                "INSERT INTO {users} (id, name, active, visits) VALUES ({}, {}, 1, 0)",
                $p1, $p2
            )))
            .bind(id)
            .bind(name)
            .execute(&app.pool)
            .await
            .map_err(internal)?;
            Ok(StatusCode::CREATED)
        }

        /// A database with the tables and five users (written untraced),
        /// and the app serving it on a real socket.
        struct Fixture {
            raw: sqlx::Pool<$db>,
            tables: Tables,
            url: String,
        }

        impl Fixture {
            async fn start() -> Fixture {
                let raw: sqlx::Pool<$db> = $connect;
                let users = support::unique("users");
                let visits = users.replacen("users", "visits", 1);
                for ddl in [
                    format!(
                        "CREATE TABLE {users} (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, \
                         active INT NOT NULL, visits INT NOT NULL)"
                    ),
                    format!(
                        "CREATE TABLE {visits} \
                         (user_id BIGINT NOT NULL, source VARCHAR(16) NOT NULL)"
                    ),
                ] {
                    sqlx::raw_sql(sql(ddl))
                        .execute(&raw)
                        .await
                        .expect("create table");
                }
                for (id, name) in (1_i64..).zip(NAMES) {
                    sqlx::query(sql(format!(
                        "INSERT INTO {users} (id, name, active, visits) VALUES ({}, {}, 1, 0)",
                        $p1, $p2
                    )))
                    .bind(id)
                    .bind(name)
                    .execute(&raw)
                    .await
                    .expect("insert user");
                }
                let tables = Tables {
                    users: users.into(),
                    visits: visits.into(),
                };
                let app = Router::new()
                    .route("/users/{id}", get(show_user).post(create_user))
                    .with_state(App {
                        pool: TracedPool::new(raw.clone()),
                        tables: tables.clone(),
                    })
                    .layer(TraceLayer::server());
                let url = support::serve(app).await;
                Fixture { raw, tables, url }
            }

            fn users(&self) -> &str {
                &self.tables.users
            }

            fn visits(&self) -> &str {
                &self.tables.visits
            }

            /// The DB spans `GET /users/{id}` makes, in order.
            fn show_user_queries(&self) -> [String; 5] {
                [
                    format!("SELECT {}", self.users()),
                    format!("INSERT {}", self.visits()),
                    "BEGIN".to_owned(),
                    format!("UPDATE {}", self.users()),
                    "COMMIT".to_owned(),
                ]
            }

            async fn visits_of(&self, id: i64) -> i64 {
                let visits: i64 = sqlx::query_scalar(sql(format!(
                    "SELECT COUNT(*) FROM {} WHERE user_id = {}",
                    self.visits(),
                    $p1
                )))
                .bind(id)
                .fetch_one(&self.raw)
                .await
                .expect("count visits");
                visits
            }

            async fn finish(self) {
                for table in [self.users(), self.visits()] {
                    sqlx::raw_sql(sql(format!("DROP TABLE {table}")))
                        .execute(&self.raw)
                        .await
                        .expect("drop table");
                }
                self.raw.close().await;
            }
        }

        /// How long the spans may take to end after the answers came.
        const WITHIN: Duration = Duration::from_secs(30);

        /// What every query span carries, whatever the query.
        #[track_caller]
        fn assert_db_client(span: &SpanData, server: &SpanData) {
            assert_eq!(span.kind, SpanKind::Client, "{}", span.name);
            assert_eq!(
                span.parent_span_id,
                server.span_context.span_id(),
                "{}",
                span.name
            );
            assert!(!span.parent_is_remote, "{}", span.name);
            assert_eq!(span.span_context.trace_id(), server.span_context.trace_id());
            assert_eq!(str_attr(span, "db.system.name"), $system, "{}", span.name);
            assert_eq!(str_attr(span, "db.namespace"), $namespace, "{}", span.name);
            let address: Option<&str> = $address;
            assert_eq!(
                span.attribute("server.address")
                    .and_then(tracewire::Value::as_str),
                address,
                "{}",
                span.name
            );
            assert!(span.attribute("server.port").is_none(), "default port");
        }

        $(#[$attr])*
        #[test]
        fn a_request_is_one_trace_down_to_its_queries() {
            support::run($subscriber, |exporter| async move {
                let fixture = Fixture::start().await;
                let client = support::reqwest_client();

                let root = tracing::info_span!("load profile");
                let body = client
                    .get(format!("{}/users/2", fixture.url))
                    .send()
                    .instrument(root.clone())
                    .await
                    .expect("send")
                    .error_for_status()
                    .expect("200")
                    .text()
                    .await
                    .expect("body");
                let trace = root.span_context().expect("traced").trace_id();
                drop(root);
                assert_eq!(body, format!("{trace} bob"), "the handler ran in the trace");
                assert_eq!(fixture.visits_of(2).await, 1, "the visit was written");

                let spans = support::wait_for_spans(&exporter, 8, WITHIN, String::new).await;
                assert_eq!(spans.len(), 8, "{}", exporter.tree());
                assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
                let [select, insert, begin, update, commit] = fixture.show_user_queries();
                assert_eq!(
                    exporter.tree(),
                    support::tree([
                        "load profile".to_owned(),
                        "  GET [client]".to_owned(),
                        "    GET /users/{id} [server]".to_owned(),
                        format!("      {select} [client]"),
                        format!("      {insert} [client]"),
                        format!("      {begin} [client]"),
                        format!("      {update} [client]"),
                        format!("      {commit} [client]"),
                    ])
                );

                let root = exporter.span("load profile");
                let client_span = child(&exporter, &root, "GET");
                assert_eq!(client_span.kind, SpanKind::Client);
                assert_eq!(client_span.status, Status::Unset);
                let server = child(&exporter, &client_span, "GET /users/{id}");
                assert_eq!(server.kind, SpanKind::Server);
                assert!(server.parent_is_remote, "the context came over the socket");
                assert_eq!(server.status, Status::Unset);
                assert_eq!(str_attr(&server, "http.route"), "/users/{id}");
                assert_eq!(str_attr(&server, "url.path"), "/users/2");
                assert_eq!(int_attr(&server, "http.response.status_code"), 200);

                let queries = exporter.children_of(&server);
                assert_eq!(queries.len(), 5);
                for span in &queries {
                    assert_db_client(span, &server);
                    assert_eq!(span.status, Status::Unset, "{}", span.name);
                    assert!(span.attribute("error.type").is_none());
                    assert!(span.attribute("db.response.status_code").is_none());
                    assert!(span.start_time >= server.start_time);
                    assert!(
                        span.end_time <= server.end_time,
                        "{} ends inside",
                        span.name
                    );
                }
                let (users, visits) = (fixture.users(), fixture.visits());
                let expect = [
                    (
                        &queries[0],
                        "SELECT",
                        users,
                        format!("SELECT name FROM {users} WHERE id = {} AND active = ?", $p1),
                    ),
                    (
                        &queries[1],
                        "INSERT",
                        visits,
                        format!("INSERT INTO {visits} (user_id, source) VALUES ({}, ?)", $p1),
                    ),
                    (
                        &queries[3],
                        "UPDATE",
                        users,
                        format!("UPDATE {users} SET visits = visits + ? WHERE id = {}", $p1),
                    ),
                ];
                for (span, operation, collection, text) in expect {
                    assert_eq!(str_attr(span, "db.operation.name"), operation);
                    assert_eq!(str_attr(span, "db.collection.name"), collection);
                    assert_eq!(str_attr(span, "db.query.text"), text, "sanitized");
                    assert_eq!(
                        str_attr(span, "db.query.summary"),
                        format!("{operation} {collection}")
                    );
                }
                assert_eq!(str_attr(&queries[4], "db.operation.name"), "COMMIT");
                fixture.finish().await;
            });
        }

        $(#[$attr])*
        #[test]
        fn a_failing_query_makes_the_request_an_error() {
            support::run($subscriber, |exporter| async move {
                let fixture = Fixture::start().await;
                let client = support::reqwest_client();
                let users = fixture.users().to_owned();

                let create = |name: &'static str| {
                    let root = tracing::info_span!("sign up", name);
                    let trace = root.span_context().expect("traced").trace_id();
                    let request = client
                        .post(format!("{}/users/9", fixture.url))
                        .body(name)
                        .send()
                        .instrument(root);
                    async move { (trace, request.await.expect("send").status()) }
                };
                let (created, status) = create("fay").await;
                assert_eq!(status, 201);
                let (taken, status) = create("gus").await;
                assert_eq!(status, 500, "the id is taken");

                let spans = support::wait_for_spans(&exporter, 8, WITHIN, String::new).await;
                assert_eq!(spans.len(), 8, "{}", exporter.tree());
                assert_eq!(
                    exporter.tree(),
                    support::tree([
                        "sign up".to_owned(),
                        "  POST [client]".to_owned(),
                        "    POST /users/{id} [server]".to_owned(),
                        format!("      INSERT {users} [client]"),
                    ])
                    .repeat(2)
                );
                let text = format!(
                    "INSERT INTO {users} (id, name, active, visits) VALUES ({}, {}, ?, ?)",
                    $p1, $p2
                );

                let server_of = |trace: TraceId| -> SpanData {
                    let found: Vec<_> = exporter
                        .trace(trace)
                        .into_iter()
                        .filter(|s| s.kind == SpanKind::Server)
                        .collect();
                    assert_eq!(found.len(), 1, "one server span in {trace}");
                    found.into_iter().next().expect("one")
                };

                // The first sign-up worked: nothing is an error.
                let server = server_of(created);
                assert_eq!(server.status, Status::Unset);
                assert_eq!(int_attr(&server, "http.response.status_code"), 201);
                let insert = child(&exporter, &server, &format!("INSERT {users}"));
                assert_db_client(&insert, &server);
                assert_eq!(insert.status, Status::Unset);
                assert_eq!(str_attr(&insert, "db.query.text"), text);

                // The second one failed in the database.
                let server = server_of(taken);
                let insert = child(&exporter, &server, &format!("INSERT {users}"));
                assert_db_client(&insert, &server);
                assert!(insert.status.is_error(), "{:?}", insert.status);
                assert_eq!(str_attr(&insert, "db.response.status_code"), $unique_code);
                assert_eq!(str_attr(&insert, "error.type"), $unique_code);
                assert_eq!(str_attr(&insert, "db.operation.name"), "INSERT");
                assert_eq!(str_attr(&insert, "db.collection.name"), users);
                assert_eq!(str_attr(&insert, "db.query.text"), text);
                // … and so did the request, on both sides.
                assert!(server.status.is_error(), "{:?}", server.status);
                assert_eq!(str_attr(&server, "http.route"), "/users/{id}");
                assert_eq!(int_attr(&server, "http.response.status_code"), 500);
                assert_eq!(str_attr(&server, "error.type"), "500");
                let client_span = exporter.parent_of(&server).expect("client span");
                assert_eq!(client_span.name, "POST");
                assert_eq!(client_span.kind, SpanKind::Client);
                assert!(client_span.status.is_error());
                assert_eq!(str_attr(&client_span, "error.type"), "500");
                fixture.finish().await;
            });
        }

        $(#[$attr])*
        #[test]
        fn concurrent_requests_keep_their_queries_in_their_own_trace() {
            support::run($subscriber, |exporter| async move {
                const REQUESTS: usize = 50;
                let fixture = Fixture::start().await;
                let client = support::reqwest_client();

                let requests = (0..REQUESTS).map(|i| {
                    let id = i % NAMES.len() + 1;
                    let root = tracing::info_span!("request", i);
                    let trace = root.span_context().expect("traced").trace_id();
                    let url = format!("{}/users/{id}", fixture.url);
                    let client = client.clone();
                    async move {
                        let body = client
                            .get(url)
                            .send()
                            .await
                            .expect("send")
                            .error_for_status()
                            .expect("200")
                            .text()
                            .await
                            .expect("body");
                        (i, id, trace, body)
                    }
                    .instrument(root)
                });
                let answers = futures_util::future::join_all(requests).await;

                let total = REQUESTS * 8;
                let spans = support::wait_for_spans(&exporter, total, WITHIN, String::new).await;
                assert_eq!(spans.len(), total);
                let queries = fixture.show_user_queries();
                for (i, id, trace, body) in answers {
                    assert_eq!(
                        body,
                        format!("{trace} {}", NAMES[id - 1]),
                        "request {i}: its handler ran in its trace"
                    );
                    let in_trace = exporter.trace(trace);
                    assert_eq!(in_trace.len(), 8, "request {i}: {in_trace:#?}");
                    let root = &in_trace[0];
                    assert_eq!(root.name, "request");
                    assert_eq!(
                        root.attribute("i").and_then(tracewire::Value::as_i64),
                        Some(i as i64)
                    );
                    let client_span = child(&exporter, root, "GET");
                    let server = child(&exporter, &client_span, "GET /users/{id}");
                    assert_eq!(str_attr(&server, "url.path"), format!("/users/{id}"));
                    let children = exporter.children_of(&server);
                    let names: Vec<&str> = children.iter().map(|s| &*s.name).collect();
                    assert_eq!(names, queries, "request {i}");
                    for span in &children {
                        assert_db_client(span, &server);
                        assert_eq!(span.status, Status::Unset);
                    }
                }
                let mut traces: Vec<TraceId> =
                    spans.iter().map(|s| s.span_context.trace_id()).collect();
                traces.sort_by_key(|t| t.to_string());
                traces.dedup();
                assert_eq!(
                    traces.len(),
                    REQUESTS,
                    "no span outside the requests' traces"
                );
                for id in 1..=NAMES.len() as i64 {
                    assert_eq!(fixture.visits_of(id).await, (REQUESTS / NAMES.len()) as i64);
                }
                fixture.finish().await;
            });
        }
    };
}

mod sqlite {
    db_cases! {
        db: sqlx::Sqlite,
        // One connection: each connection to `sqlite::memory:` is a
        // database of its own.
        connect: sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .expect("sqlite"),
        subscriber: support::Subscriber::ProcessWide,
        p1: "$1",
        p2: "$2",
        system: "sqlite",
        namespace: ":memory:",
        address: None,
        unique_code: "1555",
    }
}

mod postgres {
    db_cases! {
        #[ignore = "needs PostgreSQL (TRACEWIRE_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test): cargo nextest run --run-ignored all"]
        db: sqlx::Postgres,
        connect: sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&support::env_or(
                "TRACEWIRE_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ))
            .await
            .expect("connect to PostgreSQL"),
        subscriber: support::Subscriber::PerTest,
        p1: "$1",
        p2: "$2",
        system: "postgresql",
        namespace: "test",
        address: Some("127.0.0.1"),
        unique_code: "23505",
    }
}

/// MariaDB (or MySQL: `TRACEWIRE_MYSQL_SYSTEM=mysql`).
mod mysql {
    use std::sync::LazyLock;

    static SYSTEM: LazyLock<String> =
        LazyLock::new(|| support::env_or("TRACEWIRE_MYSQL_SYSTEM", "mariadb"));

    db_cases! {
        #[ignore = "needs MariaDB/MySQL (TRACEWIRE_MYSQL_URL, default mysql://root@127.0.0.1:3306/test): cargo nextest run --run-ignored all"]
        db: sqlx::MySql,
        connect: sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(8)
            .connect(&support::env_or("TRACEWIRE_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
            .await
            .expect("connect to MariaDB/MySQL"),
        subscriber: support::Subscriber::PerTest,
        p1: "?",
        p2: "?",
        system: SYSTEM.as_str(),
        namespace: "test",
        address: Some("127.0.0.1"),
        // The error number of a duplicate key (ER_DUP_ENTRY), not its
        // SQLSTATE (23000).
        unique_code: "1062",
    }
}
