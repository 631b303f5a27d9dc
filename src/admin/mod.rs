//! The admin side: the history as JSON views (shared with the CLI), and the admin HTTP
//! server (token auth, JSON API, HTML pages, `/healthz`, `/metrics`).

pub mod view;
