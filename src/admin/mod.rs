//! The admin HTTP server: token auth, the JSON API and HTML pages over the history
//! (`history`'s typed views), `/healthz` and `/metrics`.

mod api;
mod auth;
mod backfills;
mod error;
mod inbound;
mod pages;
mod server;

pub(crate) use auth::constant_time_eq;
pub use error::AdminError;
pub use server::{AdminState, router, serve};
