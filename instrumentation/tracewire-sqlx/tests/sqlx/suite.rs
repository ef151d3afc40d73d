//! The tests every database runs, as a macro over the database type.
//!
//! The attributes before `db:` go on every test: `#[ignore = "…"]` for the
//! databases that need a server (the test then fails when it runs and the
//! server is unreachable, and shows as skipped when it is not asked for).
//! `$connect` is an async expression giving a `sqlx::Pool<$db>`;
//! `$p1`/`$p2` are the placeholders; `$system`, `$namespace`, `$address`
//! the expected attributes; `$syntax_code` and `$unique_code` the expected
//! error codes; `$slow_rows` a query whose three rows come slowly (the
//! server or worker is busy before each, so the stream is polled while it
//! has nothing yet).

macro_rules! db_suite {
    (
        $(#[$attr:meta])*
        db: $db:ty,
        connect: $connect:expr,
        capture: $capture:ident,
        p1: $p1:literal,
        p2: $p2:literal,
        system: $system:expr,
        namespace: $namespace:expr,
        address: $address:expr,
        syntax_code: $syntax_code:expr,
        unique_code: $unique_code:expr,
        slow_rows: $slow_rows:expr $(,)?
    ) => {
        use futures_util::{StreamExt, TryStreamExt};
        use sqlx::Row;
        use tracewire_sqlx::{QueryText, TracedPool};
        use tracing::Instrument;

        use crate::support::*;

        async fn pool() -> sqlx::Pool<$db> {
            $connect
        }

        async fn setup(pool: &sqlx::Pool<$db>, prefix: &str) -> String {
            let table = unique_table(prefix);
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64))"
            )))
            .execute(pool)
            .await
            .unwrap();
            table
        }

        async fn teardown(pool: &sqlx::Pool<$db>, table: &str) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
                .execute(pool)
                .await
                .unwrap();
        }

        /// Runs one command outside any span: sqlx's SQLite worker holds the
        /// span current at its last command (here the caller's, when a
        /// connection went back to the pool) until the next command.
        async fn flush(pool: &sqlx::Pool<$db>) {
            sqlx::query("SELECT 1").execute(pool).await.unwrap();
        }

        fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
            sqlx::AssertSqlSafe(text)
        }

        $(#[$attr])*
        #[tokio::test]
        async fn every_executor_method_is_a_client_span_under_the_current_span() {
            let raw = pool().await;
            let table = setup(&raw, "exec").await;
            let pool = TracedPool::builder(raw.clone()).returned_rows(true).build();
            let (exporter, _guard) = $capture();

            async {
                let done = sqlx::query(sql(format!(
                    "INSERT INTO {table} (id, name) VALUES ({}, {})",
                    $p1, $p2
                )))
                .bind(1_i64)
                .bind("ann")
                .execute(&pool)
                .await
                .unwrap();
                assert_eq!(done.rows_affected(), 1);
                sqlx::query(sql(format!(
                    "INSERT INTO {table} (id, name) VALUES (2, 'bob'), (3, 'cy')"
                )))
                .execute(&pool)
                .await
                .unwrap();
            }
            .instrument(tracing::info_span!("insert"))
            .await;

            async {
                let all = sqlx::query(sql(format!("SELECT id, name FROM {table} ORDER BY id")))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                assert_eq!(all.len(), 3);
            }
            .instrument(tracing::info_span!("all"))
            .await;

            async {
                let row = sqlx::query(sql(format!("SELECT name FROM {table} WHERE id = {}", $p1)))
                    .bind(2_i64)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(row.get::<String, _>(0), "bob");
            }
            .instrument(tracing::info_span!("one"))
            .await;

            async {
                let none = sqlx::query(sql(format!(
                    "DELETE FROM {table} WHERE id = 99 RETURNING id"
                )))
                .fetch_optional(&pool)
                .await;
                // MySQL has no RETURNING: fall back to a plain lookup there.
                let none = match none {
                    Ok(v) => v,
                    Err(_) => sqlx::query(sql(format!("SELECT id FROM {table} WHERE id = 99")))
                        .fetch_optional(&pool)
                        .await
                        .unwrap(),
                };
                assert!(none.is_none());
            }
            .instrument(tracing::info_span!("optional"))
            .await;

            async {
                let ids: Vec<i64> = sqlx::query_scalar::<_, i64>(sql(format!(
                    "SELECT id FROM {table} WHERE id > 1 ORDER BY id"
                )))
                .fetch(&pool)
                .try_collect()
                .await
                .unwrap();
                assert_eq!(ids, [2, 3]);
            }
            .instrument(tracing::info_span!("stream"))
            .await;

            flush(&raw).await;

            for parent in ["insert", "all", "one", "optional", "stream"] {
                wait_for(&exporter, parent, 1).await;
            }
            let insert = exporter.spans_named(&format!("INSERT {table}"));
            assert_eq!(insert.len(), 2);
            let parent = exporter.span("insert");
            for span in &insert {
                assert_eq!(span.parent_span_id, parent.span_context.span_id());
                assert_eq!(span.kind, tracewire::SpanKind::Client);
                assert_eq!(str_attr(span, "db.system.name"), Some($system));
                assert_eq!(str_attr(span, "db.namespace"), Some($namespace));
                assert_eq!(str_attr(span, "server.address"), $address);
                assert!(
                    span.attribute("server.port").is_none(),
                    "default port is not recorded"
                );
                assert_eq!(str_attr(span, "db.operation.name"), Some("INSERT"));
                assert_eq!(str_attr(span, "db.collection.name"), Some(table.as_str()));
                assert_eq!(
                    str_attr(span, "db.query.summary"),
                    Some(format!("INSERT {table}").as_str())
                );
                let wait = span
                    .attribute("db.client.connection.wait_time")
                    .and_then(|v| v.as_f64());
                assert!(
                    wait.is_some_and(|w| w >= 0.0),
                    "wait time recorded as seconds"
                );
                assert!(!is_error(span));
            }
            let texts: Vec<_> = insert
                .iter()
                .map(|s| str_attr(s, "db.query.text").unwrap().to_owned())
                .collect();
            assert!(texts.contains(&format!(
                "INSERT INTO {table} (id, name) VALUES ({}, {})",
                $p1, $p2
            )));
            assert!(texts.contains(&format!(
                "INSERT INTO {table} (id, name) VALUES (?, ?), (?, ?)"
            )));

            let select = client_child(&exporter, "all", &format!("SELECT {table}"));
            assert_eq!(i64_attr(&select, "db.response.returned_rows"), Some(3));
            let one = client_child(&exporter, "one", &format!("SELECT {table}"));
            assert_eq!(i64_attr(&one, "db.response.returned_rows"), Some(1));
            assert_eq!(
                str_attr(&one, "db.query.text"),
                Some(format!("SELECT name FROM {table} WHERE id = {}", $p1).as_str())
            );
            let optional = exporter.children_of(&exporter.span("optional"));
            let last = optional.last().expect("optional query span");
            assert_eq!(i64_attr(last, "db.response.returned_rows"), Some(0));
            let stream = client_child(&exporter, "stream", &format!("SELECT {table}"));
            assert_eq!(i64_attr(&stream, "db.response.returned_rows"), Some(2));
            assert_eq!(
                str_attr(&stream, "db.query.text"),
                Some(format!("SELECT id FROM {table} WHERE id > ? ORDER BY id").as_str())
            );

            teardown(&raw, &table).await;
        }

        $(#[$attr])*
        #[tokio::test]
        async fn query_text_modes() {
            let raw = pool().await;
            let (exporter, _guard) = $capture();
            for (mode, label) in [
                (QueryText::Full, "full"),
                (QueryText::Sanitized, "sanitized"),
                (QueryText::Off, "off"),
            ] {
                let pool = TracedPool::builder(raw.clone()).query_text(mode).build();
                async {
                    sqlx::query("SELECT 'secret' AS s")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                }
                .instrument(tracing::info_span!("mode", label))
                .await;
            }
            flush(&raw).await;
            wait_for(&exporter, "mode", 3).await;
            let mut spans = exporter.spans_named("SELECT");
            spans.sort_by_key(|s| s.start_time);
            let texts: Vec<_> = spans.iter().map(|s| str_attr(s, "db.query.text")).collect();
            assert_eq!(
                texts,
                [Some("SELECT 'secret' AS s"), Some("SELECT ? AS s"), None]
            );
            assert!(
                spans
                    .iter()
                    .all(|s| str_attr(s, "db.query.summary") == Some("SELECT"))
            );
            assert!(
                spans
                    .iter()
                    .all(|s| s.attribute("db.response.returned_rows").is_none()),
                "row counts are opt-in"
            );
        }

        $(#[$attr])*
        #[tokio::test]
        async fn failing_queries_record_the_error_code_and_status() {
            let raw = pool().await;
            let table = setup(&raw, "err").await;
            let pool = TracedPool::new(raw.clone());
            let (exporter, _guard) = $capture();

            async {
                let err = sqlx::query("SELEC oops FROM nowhere")
                    .execute(&pool)
                    .await
                    .unwrap_err();
                assert!(matches!(err, sqlx::Error::Database(_)));
                sqlx::query(sql(format!("INSERT INTO {table} (id) VALUES (1)")))
                    .execute(&pool)
                    .await
                    .unwrap();
                let dup = sqlx::query(sql(format!("INSERT INTO {table} (id) VALUES (1)")))
                    .execute(&pool)
                    .await;
                assert!(dup.is_err());
                // fetch_optional reports errors too.
                assert!(
                    sqlx::query("SELECT * FROM no_such_table_here")
                        .fetch_optional(&pool)
                        .await
                        .is_err()
                );
            }
            .instrument(tracing::info_span!("errors"))
            .await;
            flush(&raw).await;
            wait_for(&exporter, "errors", 1).await;

            let syntax = exporter.span("SELEC");
            assert!(is_error(&syntax), "{:?}", syntax.status);
            assert_eq!(
                str_attr(&syntax, "db.response.status_code"),
                Some($syntax_code)
            );
            assert_eq!(str_attr(&syntax, "error.type"), Some($syntax_code));
            // In the order they ran (a span can end on the driver's thread
            // a moment after the next one started).
            let mut inserts = exporter.spans_named(&format!("INSERT {table}"));
            inserts.sort_by_key(|s| s.start_time);
            assert_eq!(inserts.len(), 2);
            assert!(!is_error(&inserts[0]));
            assert!(inserts[0].attribute("error.type").is_none());
            assert!(is_error(&inserts[1]));
            assert_eq!(
                str_attr(&inserts[1], "db.response.status_code"),
                Some($unique_code)
            );
            assert_eq!(str_attr(&inserts[1], "error.type"), Some($unique_code));
            let missing = exporter.span("SELECT no_such_table_here");
            assert!(is_error(&missing));
            assert!(missing.attribute("db.response.status_code").is_some());

            teardown(&raw, &table).await;
        }

        $(#[$attr])*
        #[tokio::test]
        async fn a_stream_dropped_early_ends_its_span() {
            let raw = pool().await;
            let table = setup(&raw, "drop").await;
            sqlx::query(sql(format!(
                "INSERT INTO {table} (id) VALUES (1), (2), (3)"
            )))
            .execute(&raw)
            .await
            .unwrap();
            let pool = TracedPool::builder(raw.clone()).returned_rows(true).build();
            let (exporter, _guard) = $capture();
            {
                let _parent = tracing::info_span!("reader").entered();
                let mut rows =
                    sqlx::query(sql(format!("SELECT id FROM {table} ORDER BY id"))).fetch(&pool);
                let first = rows.next().await.unwrap().unwrap();
                assert_eq!(first.get::<i64, _>(0), 1);
                assert!(
                    exporter.find(&format!("SELECT {table}")).is_none(),
                    "span still open while the stream lives"
                );
                drop(rows);
            }
            flush(&raw).await;
            wait_for(&exporter, "reader", 1).await;
            let span = client_child(&exporter, "reader", &format!("SELECT {table}"));
            assert_eq!(i64_attr(&span, "db.response.returned_rows"), Some(1));
            assert!(!is_error(&span));
            teardown(&raw, &table).await;
        }

        /// The pool's stream owns its connection and the results borrowing
        /// it; when the results are not ready it must leave the task to be
        /// woken when they are, or the stream never ends. The sleep is
        /// checked first: a stream only polled again because the deadline
        /// woke the task fails.
        $(#[$attr])*
        #[tokio::test]
        async fn a_stream_of_slow_rows_wakes_its_task_and_completes() {
            let raw = pool().await;
            let pool = TracedPool::builder(raw.clone()).returned_rows(true).build();
            let rows = async {
                let mut rows = sqlx::query($slow_rows).fetch(&pool);
                let mut count = 0;
                while let Some(row) = rows.next().await {
                    row.unwrap();
                    count += 1;
                }
                count
            };
            let count = tokio::select! {
                biased;
                () = tokio::time::sleep(std::time::Duration::from_secs(20)) => {
                    panic!("the stream was not woken when its rows came")
                }
                count = rows => count,
            };
            assert_eq!(count, 3);
        }

        $(#[$attr])*
        #[tokio::test]
        async fn transactions_commit_and_roll_back_with_spans() {
            let raw = pool().await;
            let table = setup(&raw, "tx").await;
            let pool = TracedPool::new(raw.clone());
            let (exporter, _guard) = $capture();

            async {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(sql(format!("INSERT INTO {table} (id) VALUES (1)")))
                    .execute(&mut tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();

                let mut tx = pool.begin().await.unwrap();
                sqlx::query(sql(format!("INSERT INTO {table} (id) VALUES (2)")))
                    .execute(&mut tx)
                    .await
                    .unwrap();
                let inside: i64 = sqlx::query_scalar(sql(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut tx)
                    .await
                    .unwrap();
                assert_eq!(inside, 2);
                tx.rollback().await.unwrap();

                let mut conn = pool.acquire().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                sqlx::query(sql(format!("UPDATE {table} SET name = 'x' WHERE id = 1")))
                    .execute(&mut tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                let after: i64 = sqlx::query_scalar(sql(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(after, 1);
            }
            .instrument(tracing::info_span!("work"))
            .await;

            flush(&raw).await;

            wait_for(&exporter, "work", 1).await;
            let work = exporter.span("work");
            let names: Vec<String> = exporter
                .children_of(&work)
                .iter()
                .map(|s| s.name.to_string())
                .collect();
            assert_eq!(
                names,
                [
                    "BEGIN".to_owned(),
                    format!("INSERT {table}"),
                    "COMMIT".to_owned(),
                    "BEGIN".to_owned(),
                    format!("INSERT {table}"),
                    format!("SELECT {table}"),
                    "ROLLBACK".to_owned(),
                    "BEGIN".to_owned(),
                    format!("UPDATE {table}"),
                    "COMMIT".to_owned(),
                    format!("SELECT {table}"),
                ]
            );
            for span in exporter.children_of(&work) {
                assert_eq!(span.kind, tracewire::SpanKind::Client);
                assert_eq!(
                    str_attr(&span, "db.system.name"),
                    Some($system),
                    "{}",
                    span.name
                );
                assert!(!is_error(&span));
            }
            let commit = &exporter.spans_named("COMMIT")[0];
            assert_eq!(str_attr(commit, "db.operation.name"), Some("COMMIT"));
            teardown(&raw, &table).await;
        }

        /// Code generic over `sqlx::Executor` (what sqlx's query functions
        /// take) is traced with the pool, a connection and a transaction.
        /// (`sqlx::Acquire` cannot be: see the crate docs.)
        $(#[$attr])*
        #[tokio::test]
        async fn generic_executor_code_is_traced_with_pool_connection_and_transaction() {
            async fn count<'e, E>(executor: E, table: &str) -> i64
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_scalar(sql(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(executor)
                    .await
                    .unwrap()
            }

            let raw = pool().await;
            let table = setup(&raw, "generic").await;
            let pool = TracedPool::new(raw.clone());
            let (exporter, _guard) = $capture();

            async {
                assert_eq!(count(&pool, &table).await, 0);
                let mut conn = pool.acquire().await.unwrap();
                assert_eq!(count(&mut conn, &table).await, 0);
                drop(conn);
                let mut tx = pool.begin().await.unwrap();
                assert_eq!(count(&mut tx, &table).await, 0);
                tx.commit().await.unwrap();
            }
            .instrument(tracing::info_span!("generic"))
            .await;

            flush(&raw).await;
            wait_for(&exporter, "generic", 1).await;
            let generic = exporter.span("generic");
            let names: Vec<String> = exporter
                .children_of(&generic)
                .iter()
                .map(|s| s.name.to_string())
                .collect();
            let select = format!("SELECT {table}");
            assert_eq!(
                names,
                [
                    select.clone(),
                    select.clone(),
                    "BEGIN".to_owned(),
                    select,
                    "COMMIT".to_owned(),
                ]
            );
            for span in exporter.children_of(&generic) {
                assert_eq!(span.kind, tracewire::SpanKind::Client);
                assert_eq!(str_attr(&span, "db.system.name"), Some($system));
            }
            teardown(&raw, &table).await;
        }

        $(#[$attr])*
        #[tokio::test]
        async fn concurrent_queries_each_have_their_own_parent() {
            let raw = pool().await;
            let pool = TracedPool::new(raw.clone());
            let (exporter, _guard) = $capture();
            let tasks = (0..16_i64).map(|i| {
                let pool = pool.clone();
                async move {
                    sqlx::query(sql(format!("SELECT {i} + 0 AS v")))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                }
                .instrument(tracing::info_span!("task", i))
            });
            futures_util::future::join_all(tasks).await;
            flush(&raw).await;
            wait_for(&exporter, "task", 16).await;
            let tasks = exporter.spans_named("task");
            assert_eq!(tasks.len(), 16);
            for task in tasks {
                let children = exporter.children_of(&task);
                assert_eq!(children.len(), 1, "one query under each task");
                assert_eq!(children[0].name, "SELECT");
                assert_eq!(
                    str_attr(&children[0], "db.query.text"),
                    Some("SELECT ? + ? AS v")
                );
            }
        }
    };
}
