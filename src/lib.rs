//! rowhook turns committed row changes in PostgreSQL into HTTP webhooks.
//!
//! Data flows one way; each stage knows only the one after it:
//!
//! ```text
//!  PostgreSQL ──▶ source ──Change──▶ route ──Event──▶ store ──due Event──▶ deliver ──▶ receiver
//!      ▲                                                │
//!      └──────────── ack(lsn) once events are durable ◀─┘
//! ```
//!
//! - [`config`]: the TOML configuration, loaded and validated in full.
//! - [`change`]: what flows from a source to the router: a typed row change.
//! - [`source`]: capture — the replication connection, pgoutput decoding, value conversion,
//!   setup and checks.
//! - [`route`]: matching changes to webhooks (`on`, `active`, `when`, `columns`) and
//!   rendering each event's request from Liquid templates compiled at load.
//! - [`ingest`]: the stage after capture — routes, stores durably, then acknowledges.
//! - [`store`]: sled — events, due index, attempts, counts, checkpoint.
//! - [`deliver`]: per-webhook lanes that attempt due events on the retry schedule,
//!   sign them and record every attempt.
//! - [`envelope`]: the JSON event envelope.
//! - [`shutdown`]: the signal every stage's run loop selects on.
//! - [`receive`]: a local receiver for trying webhooks (`rowhook receive`, `rowhook demo`):
//!   prints requests and verifies their signatures. Not part of the data flow.

pub mod admin;
pub mod change;
pub mod config;
pub mod deliver;
pub mod envelope;
pub mod ingest;
pub mod metrics;
pub mod receive;
pub mod route;
pub mod shutdown;
pub mod source;
pub mod store;
