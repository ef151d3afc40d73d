//! The notification service: consumes `order.created`, tells the customer
//! (a log line: the shop sends no real e-mail), and calls the order
//! service back, all inside the `process order.created` span that
//! continues the order's trace.

use std::time::Duration;

use axum::Router;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::Message as _;
use reqwest_middleware::ClientWithMiddleware;
use tracewire_rdkafka::{TracedMessage, TracedStreamConsumer};
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

use super::{Config, Service, env, peer_url, required};
use crate::BoxError;
use crate::kafka::{self, OrderCreated, TOPIC};
use crate::net::{self, Ready, Shutdown};

struct Notifier {
    orders: ClientWithMiddleware,
    orders_url: String,
    run_id: String,
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let brokers = required(env::KAFKA_BROKERS)?;
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&kafka::consumer_config(&brokers, &config.run_id))
            .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
    consumer
        .inner()
        .subscribe(&[TOPIC])
        .map_err(|e| format!("cannot subscribe to {TOPIC}: {e}"))?;
    let notifier = Notifier {
        orders: net::client()?,
        orders_url: peer_url(Service::Orders)?,
        run_id: config.run_id.clone(),
    };
    // Only the health check is served; the work comes from Kafka. Ready
    // once the group gave this consumer its partitions, so that the first
    // orders are not kept waiting for the group to form.
    let ready = Ready::later();
    let server = net::serve(
        config.addr,
        Router::new(),
        TraceLayer::server(),
        ready.clone(),
        shutdown.clone(),
    );
    let assignment = async {
        while !consumer.inner().assignment().is_ok_and(|a| a.count() > 0) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!("partitions of {TOPIC} assigned");
        ready.set();
    };
    let stop_assignment = shutdown.clone();
    let consume = async {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                received = consumer.recv() => match received {
                    Ok(message) => {
                        let span = message.span().clone();
                        notifier.handle(&message).instrument(span.clone()).await;
                        span.in_scope(|| {
                            if let Err(error) = consumer.commit_message(&message, CommitMode::Async) {
                                tracing::warn!(error = %error, "cannot commit the offset");
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot receive from {TOPIC}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    };
    let work = async {
        let assigned = async {
            tokio::select! {
                () = assignment => {}
                () = stop_assignment.wait() => {}
            }
        };
        tokio::join!(consume, assigned);
    };
    tokio::pin!(server, work);
    tokio::select! {
        // Listening failed, or the server stopped: let the message in hand
        // be finished.
        served = &mut server => {
            served?;
            work.await;
            Ok(())
        }
        () = &mut work => server.await,
    }
}

impl Notifier {
    async fn handle(&self, message: &TracedMessage<'_>) {
        let event: OrderCreated = match serde_json::from_slice(message.payload().unwrap_or(&[])) {
            Ok(event) => event,
            Err(error) => {
                message.record_error("invalid_payload", &error);
                tracing::warn!(error = %error, "skipping an event that is not an OrderCreated");
                return;
            }
        };
        if event.run_id != self.run_id {
            tracing::info!(
                order.id = event.order_id,
                "skipping an event of another run"
            );
            return;
        }
        tracing::info!(
            order.id = event.order_id,
            user.id = event.user_id,
            amount_cents = event.amount_cents,
            "order confirmation sent to the customer"
        );
        let url = format!("{}/orders/{}/notified", self.orders_url, event.order_id);
        match self.orders.post(url).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => tracing::error!(
                order.id = event.order_id,
                status = %response.status(),
                "the order service refused the notification callback"
            ),
            Err(error) => tracing::error!(
                order.id = event.order_id,
                error = %error,
                "cannot call the order service back"
            ),
        }
    }
}
