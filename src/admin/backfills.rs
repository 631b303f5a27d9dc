//! Backfill jobs over HTTP: `POST /api/backfills` starts one (what `rowhook backfill`
//! calls), `GET /api/backfills[/{id}]` follows them, `POST /api/backfills/{id}/cancel`
//! stops one; the home page and `/metrics` show them.

use std::fmt::Write;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::AdminError;
use super::server::AdminState;
use crate::backfill::{BackfillJob, BackfillRequest, Backfills};

impl AdminState {
    fn backfills(&self) -> Result<&Arc<Backfills>, AdminError> {
        self.backfills.as_ref().ok_or(AdminError::NoBackfills)
    }
}

pub(super) async fn list(
    State(state): State<AdminState>,
) -> Result<Json<Vec<BackfillJob>>, AdminError> {
    Ok(Json(state.backfills()?.list()))
}

pub(super) async fn start(
    State(state): State<AdminState>,
    Json(request): Json<BackfillRequest>,
) -> Result<(StatusCode, Json<BackfillJob>), AdminError> {
    let job = state.backfills()?.start(request).await?;
    tracing::info!(job = job.id, model = %job.model, webhooks = ?job.webhooks, "backfill started");
    Ok((StatusCode::CREATED, Json(job)))
}

pub(super) async fn show(
    State(state): State<AdminState>,
    Path(id): Path<u32>,
) -> Result<Json<BackfillJob>, AdminError> {
    state
        .backfills()?
        .get(id)
        .map(Json)
        .ok_or(AdminError::Backfill(
            crate::backfill::BackfillError::NotFound(id),
        ))
}

pub(super) async fn cancel(
    State(state): State<AdminState>,
    Path(id): Path<u32>,
) -> Result<(StatusCode, Json<BackfillJob>), AdminError> {
    let job = state.backfills()?.cancel(id).await?;
    tracing::info!(job = job.id, "backfill cancel requested");
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Prometheus text for every job: rows done and estimated, and its state.
pub(super) fn metrics_text(jobs: &[BackfillJob]) -> String {
    let mut text = String::from(
        "# HELP rowhook_backfill_rows Rows a backfill job has sent.\n\
         # TYPE rowhook_backfill_rows gauge\n",
    );
    for job in jobs {
        let _ = writeln!(
            text,
            "rowhook_backfill_rows{{job=\"{}\",model=\"{}\",state=\"{}\"}} {}",
            job.id,
            job.model,
            job.state.as_str(),
            job.rows_done
        );
    }
    text.push_str(
        "# HELP rowhook_backfill_rows_estimated The planner's estimate of a job's rows.\n\
         # TYPE rowhook_backfill_rows_estimated gauge\n",
    );
    for job in jobs {
        let _ = writeln!(
            text,
            "rowhook_backfill_rows_estimated{{job=\"{}\",model=\"{}\"}} {}",
            job.id, job.model, job.rows_estimated
        );
    }
    text
}

/// The home page's table of jobs (none: nothing).
pub(super) fn table(jobs: &[BackfillJob], escape: impl Fn(&str) -> String) -> String {
    if jobs.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<h2>Backfills</h2><table><tr><th>job</th><th>model</th><th>webhooks</th>\
<th>where</th><th>state</th><th>rows</th><th>of about</th><th>events</th></tr>",
    );
    for job in jobs.iter().rev() {
        let state = match &job.error {
            Some(error) => format!("{} ({})", job.state.as_str(), escape(error)),
            None => job.state.as_str().to_string(),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td>\
<td class=\"number\">{}</td><td class=\"number\">{}</td><td class=\"number\">{}</td></tr>",
            job.id,
            escape(&job.model),
            escape(&job.webhooks.join(", ")),
            escape(job.condition.as_deref().unwrap_or("—")),
            job.rows_done,
            job.rows_estimated,
            job.events_created
        );
    }
    html.push_str("</table>");
    html
}
