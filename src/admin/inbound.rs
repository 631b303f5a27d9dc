//! The inbound request log in the admin server: `GET /api/inbound` and the `/inbound`
//! page.

use std::fmt::Write;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::error::AdminError;
use super::server::AdminState;
use crate::history::MAX_PAGE;
use crate::inbound::{InboundOutcome, InboundQuery, InboundRecord};
use crate::time::rfc3339_from_unix_ms;

#[derive(Debug, Default, Deserialize)]
pub(super) struct InboundParameters {
    endpoint: Option<String>,
    outcome: Option<String>,
    limit: Option<String>,
}

impl InboundParameters {
    fn to_query(&self) -> Result<InboundQuery, AdminError> {
        let present = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        let outcome = present(&self.outcome)
            .map(|text| {
                text.parse::<InboundOutcome>()
                    .map_err(|_| AdminError::InvalidParameter {
                        parameter: "outcome",
                        value: text,
                        expected: "accepted, duplicate, unauthorized, method, too_large, \
                                   bad_json, insert_failed or timeout",
                    })
            })
            .transpose()?;
        let limit = match present(&self.limit) {
            None => 50,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or(AdminError::InvalidParameter {
                    parameter: "limit",
                    value: text,
                    expected: "a number from 1 to 500",
                })?,
        };
        Ok(InboundQuery {
            endpoint: present(&self.endpoint),
            outcome,
            limit,
        })
    }
}

pub(super) async fn list(
    State(state): State<AdminState>,
    Query(parameters): Query<InboundParameters>,
) -> Result<Json<Vec<InboundRecord>>, AdminError> {
    let query = parameters.to_query()?;
    Ok(Json(state.store.inbound_log(&query).await?))
}

/// The log as a page, with the page helpers passed in (they are private to `pages`).
pub(super) async fn records(
    state: &AdminState,
    parameters: &InboundParameters,
) -> Result<Vec<InboundRecord>, AdminError> {
    let query = parameters.to_query()?;
    Ok(state.store.inbound_log(&query).await?)
}

pub(super) fn table(records: &[InboundRecord], escape: fn(&str) -> String) -> String {
    let mut table = String::from(
        "<table><tr><th>received</th><th>endpoint</th><th>outcome</th><th>status</th>\
<th>event id</th><th>bytes</th><th>reason</th></tr>",
    );
    for record in records {
        let class = match record.outcome {
            InboundOutcome::Accepted | InboundOutcome::Duplicate => "delivered",
            _ => "failed",
        };
        let _ = write!(
            table,
            "<tr><td>{received}</td><td>{endpoint}</td><td><span class=\"badge {class}\">{outcome}\
</span></td><td class=\"number\">{status}</td><td>{event}</td><td class=\"number\">{bytes}</td>\
<td>{reason}</td></tr>",
            received = escape(&rfc3339_from_unix_ms(record.received_at_ms)),
            endpoint = escape(&record.endpoint),
            outcome = record.outcome,
            status = record.status,
            event = escape(record.event_id.as_deref().unwrap_or("–")),
            bytes = record.body_bytes,
            reason = escape(record.reason.as_deref().unwrap_or("")),
        );
    }
    table.push_str("</table>");
    if records.is_empty() {
        table.push_str("<p class=\"muted\">No inbound requests.</p>");
    }
    table
}

pub(super) async fn page(
    State(state): State<AdminState>,
    Query(parameters): Query<InboundParameters>,
) -> Result<Html<String>, super::pages::PageError> {
    let records = records(&state, &parameters).await?;
    Ok(Html(super::pages::inbound_page(&records)))
}
