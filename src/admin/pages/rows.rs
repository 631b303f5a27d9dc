//! A row's history (CONTRACT §9): every event of one row, across webhooks, newest first,
//! found through the store's row index.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::Html;

use super::{PageError, escape, events_table, layout, row_search, url_component};
use crate::admin::api::ListingParameters;
use crate::admin::error::AdminError;
use crate::admin::server::AdminState;
use crate::history::{self, EventList};

pub(crate) async fn rows(
    State(state): State<AdminState>,
    Query(mut parameters): Query<ListingParameters>,
) -> Result<Html<String>, PageError> {
    parameters.limit = None;
    let query = parameters.to_query()?;
    let Some(row) = &query.row else {
        return Err(AdminError::MissingParameter("key").into());
    };
    if !state.config.models.contains_key(&row.model) {
        return Err(AdminError::InvalidParameter {
            parameter: "model",
            value: row.model.clone(),
            expected: "a model of the configuration",
        }
        .into());
    }
    let EventList {
        events,
        next_before,
    } = history::list(state.store.as_ref(), &query, &state.config.secrets).await?;
    let title = format!("{} {}", row.model, row.key);
    let mut body = row_search(&state.config, Some(&row.model), Some(&row.key));
    let _ = write!(
        body,
        "<h1>Events of {} {}</h1>",
        escape(&row.model),
        escape(&row.key)
    );
    body.push_str(&events_table(&events, true));
    if let Some(before) = next_before {
        let older = format!(
            "/rows?model={}&key={}&before={before}",
            url_component(&row.model),
            url_component(&row.key)
        );
        let _ = write!(
            body,
            "<nav><a href=\"{}\">older →</a></nav>",
            escape(&older)
        );
    }
    Ok(Html(layout(&title, &body)))
}
