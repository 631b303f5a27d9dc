//! rowhook turns committed row changes in PostgreSQL into HTTP webhooks.
//!
//! Data flows one way; each stage knows only the one after it:
//!
//! ```text
//!  PostgreSQL ──▶ capture ──Change──▶ ingest ──▶ route ──NewEvent──▶ EventStore ──claimed──▶ deliver ──▶ receiver
//!  (pgoutput or    (decode, typed      (batches,   (match webhooks,      (trait; sled       (lanes, retry,
//!   outbox)         JSON rows)          ack)        render requests)      by default)         signing)
//!      ▲                                  │                                   ▲
//!      └──── acknowledge once durable ◀───┘          history (typed views) ───┴── admin API, pages, CLI
//! ```
//!
//! Capture has two modes: logical replication (`capture::replication`, the pgoutput
//! stream read over a hand-built replication connection) and notify mode
//! (`capture::notify`, a trigger-fed outbox drained on NOTIFY wake-ups). Both hand
//! [`change::Change`]s to [`ingest`], which routes them, appends the events to the store
//! and acknowledges the capture position once they are durable.
//!
//! - [`config`]: the TOML configuration, loaded and validated in full.
//! - [`change`]: what capture hands on: a typed row change and its position.
//! - [`capture`]: the replication stream, the notify outbox, value conversion, the shared
//!   reconnect loop, setup and checks.
//! - [`postgres`]: connection strings, TLS, ordinary connections and catalog queries.
//! - [`ingest`]: batching, acknowledgement.
//! - [`route`]: matching changes to webhooks (`on`, `active`, `when`, `columns`) and
//!   rendering each event's request from Liquid templates compiled at load.
//! - [`envelope`]: the JSON event envelope.
//! - [`event`]: what crosses from routing to the store and delivery: new events, their
//!   requests, statuses and attempts.
//! - [`retry`]: the retry schedule, pure.
//! - [`store`]: the [`store::EventStore`] interface and its backends: sled (embedded, the
//!   default) and PostgreSQL (shared by several instances, CONTRACT §10).
//! - [`deliver`]: per-webhook lanes that claim due events, attempt and record them.
//! - [`deny`]: the SSRF guard's address ranges (`delivery.deny`), pure.
//! - [`outgoing`], [`signature`]: the request an attempt sends, and its Standard Webhooks
//!   signature.
//! - [`history`]: typed views of events and attempts, and redelivery, for the admin
//!   server and the CLI.
//! - [`admin`]: the admin HTTP server: JSON API, pages, `/healthz`, `/metrics`.
//! - [`alert`]: alerts to `[[alerts]]` targets when delivery or capture is in trouble,
//!   kept and delivered as events of their own.
//! - [`metrics`]: counters for `/metrics`; [`activity`]: each webhook's last hour, for
//!   its page.
//! - [`service`]: the stages wired together for `rowhook run`.
//! - [`time`], [`secret`], [`shutdown`]: Unix milliseconds and RFC 3339; masking; the
//!   shutdown signal every run loop selects on.
//! - [`inbound`]: webhooks received into PostgreSQL tables (`[inbound]`), each once,
//!   answered after the commit.
//! - [`receive`]: a local receiver for trying webhooks (`rowhook receive`, `rowhook
//!   demo`). Not part of the data flow.

pub mod activity;
pub mod admin;
pub mod alert;
pub mod backfill;
pub mod capture;
pub mod change;
pub mod config;
pub mod deliver;
pub mod deny;
pub mod envelope;
pub mod event;
pub mod history;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod outgoing;
pub mod postgres;
pub mod rate;
pub mod receive;
pub mod retry;
pub mod route;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod signature;
pub mod store;
pub mod time;

#[cfg(test)]
mod fuzz;
