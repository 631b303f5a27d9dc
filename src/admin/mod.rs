//! The admin side: the history as JSON views (shared with the CLI), and the admin HTTP
//! server (token auth, JSON API, HTML pages, `/healthz`, `/metrics`).

mod api;
mod auth;
mod error;
mod pages;
pub mod server;
pub mod view;

pub use error::AdminError;
pub use server::{AdminState, router, serve};
