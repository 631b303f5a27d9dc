//! Routing: each captured change is matched against the webhooks of its table's model,
//! and every match becomes an event with its rendered request (CONTRACT §3, §4).
//!
//! A webhook matches a change when, in this order:
//! - it is `active`;
//! - the change's action is in its `on`;
//! - for an update, when `columns` is set: one of those columns is in `changed`. When the
//!   source does not know the old row (`changed` is unknown, as under the default replica
//!   identity), the event *is* created: a change to those columns cannot be ruled out,
//!   and a webhook that misses a change is worse than one that hears of an unrelated one;
//! - its `when` condition holds.
//!
//! A `when` or request template that fails while rendering does not drop the event: it
//! carries a [`RenderError`] instead of a request, so that it can be stored as failed and
//! shown to an admin. (In Liquid, `old.status` is an error when `old` is nil, as is
//! `changed contains 'x'` when `changed` is; `old and …` guards a condition.) Templates are compiled once, in [`Router::new`]; the Liquid
//! context is built only for webhooks that have a template, and only once per change for
//! the row data that all webhooks share.

mod alerts;
mod compile;
mod context;
mod date_filter;
mod diagnostic;
mod path;
mod request;
mod template;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use liquid::ObjectView;

use crate::change::{Action, Change, Position, TableName};
use crate::config::{Config, ConfigError, ConfigErrors, Includes};
use crate::envelope::envelope;
use crate::event::Request;
use crate::time::rfc3339_from_unix_micros;
use compile::{CompiledWebhook, compile_webhook};
use context::{Globals, LazyChangeContext, event_object};
use request::RenderInput;

pub use request::RenderError;
pub(crate) use template::has_markup;

/// The event id of CONTRACT §4: the change's position and the webhook name, so every
/// replay of the same change yields the same id. Webhook names are at most 32 characters
/// of `[a-z0-9_-]`, so ids are at most 61 characters of `[A-Za-z0-9_-]`.
pub fn event_id(position: Position, webhook: &str) -> String {
    format!(
        "evt_{:016x}{:08x}_{}",
        position.transaction, position.sequence, webhook
    )
}

/// The event id of a backfill's read: the job, the row's ordinal in it, the webhook — so a
/// job resumed after a crash sends its rows again with the same ids (at most 62
/// characters, like [`event_id`]'s).
pub fn backfill_event_id(job: u32, ordinal: u64, webhook: &str) -> String {
    format!("evt_b{job:08x}{ordinal:016x}_{webhook}")
}

/// A webhook a change may go to: it passed the rules decided without rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Candidate(usize);

/// One change matched to one webhook.
#[derive(Debug)]
pub struct RoutedEvent {
    pub id: String,
    pub webhook: String,
    pub model: String,
    /// `<model>.created|updated|deleted`.
    pub kind: String,
    /// The envelope of CONTRACT §4, with `id`.
    pub envelope: serde_json::Value,
    /// The request to send, or why it could not be rendered (the event then fails).
    pub request: Result<Request, RenderError>,
    /// Whether the body is exactly the envelope (format json without fields or body),
    /// so the store need not keep the envelope a second time.
    pub body_is_envelope: bool,
}

/// The webhooks of one captured table, in configuration order.
#[derive(Debug)]
struct TableRoutes {
    model: String,
    webhooks: Vec<usize>,
}

/// Matches changes to webhooks and renders their requests. Immutable once built, so one
/// router can serve every capture task.
#[derive(Debug)]
pub struct Router {
    webhooks: Vec<CompiledWebhook>,
    by_table: HashMap<TableName, TableRoutes>,
    alert_bodies: alerts::AlertBodies,
}

impl Router {
    /// Compiles every template of every webhook, reporting all problems at once.
    pub fn new(config: &Config) -> Result<Router, ConfigErrors> {
        let parser = template::parser().map_err(|error| {
            ConfigErrors(vec![ConfigError {
                file: config.file.clone(),
                key: String::new(),
                reason: format!("cannot set up the template parser: {error}"),
            }])
        })?;
        let mut errors = Vec::new();
        let mut webhooks = Vec::with_capacity(config.webhooks.len());
        for (index, webhook) in config.webhooks.iter().enumerate() {
            if let Some(compiled) =
                compile_webhook(&parser, &config.file, index, webhook, &mut errors)
            {
                webhooks.push(compiled);
            }
        }
        let alert_bodies =
            alerts::AlertBodies::compile(&parser, &config.file, &config.alerts, &mut errors);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }

        let mut by_table = HashMap::new();
        for model in config.captured_models() {
            let indexes = webhooks
                .iter()
                .enumerate()
                .filter(|(_, webhook)| webhook.model == model.name)
                .map(|(index, _)| index)
                .collect();
            by_table.insert(
                model.table.clone(),
                TableRoutes {
                    model: model.name.clone(),
                    webhooks: indexes,
                },
            );
        }
        Ok(Router {
            webhooks,
            by_table,
            alert_bodies,
        })
    }

    /// The request an alert sends to the `[[alerts]]` target at `index`; `alert` is the
    /// alert as JSON. The error names the key at fault.
    pub fn alert_request(
        &self,
        index: usize,
        target: &crate::config::AlertConfig,
        alert: &serde_json::Value,
    ) -> Result<Request, String> {
        self.alert_bodies.request(index, target, alert)
    }

    /// The events `change` creates, in configuration order of their webhooks, with the
    /// change's row as it is (no relations looked up). A change on a table no model
    /// captures creates none.
    pub fn route(&self, change: &Change) -> Vec<RoutedEvent> {
        self.events(&self.candidates(change), change)
    }

    /// The events of `change` for `candidates` whose `when` holds, with the change's row
    /// as it is; the row's Liquid form is built once for all of them.
    pub fn events(&self, candidates: &[Candidate], change: &Change) -> Vec<RoutedEvent> {
        let shared = LazyChangeContext::default();
        candidates
            .iter()
            .filter_map(|candidate| {
                event(
                    &self.webhooks[candidate.0],
                    change,
                    &shared,
                    Condition::Check,
                )
            })
            .collect()
    }

    /// The webhooks whose `active`, `on` and `columns` rules `change` passes, in
    /// configuration order; their `when` is decided by [`Router::event`], once the
    /// relations they include are in the row.
    pub fn candidates(&self, change: &Change) -> Vec<Candidate> {
        let Some(routes) = self.by_table.get(&change.table) else {
            return Vec::new();
        };
        routes
            .webhooks
            .iter()
            .copied()
            .filter(|&index| matches_rules(&self.webhooks[index], change))
            .map(Candidate)
            .collect()
    }

    /// The webhooks a backfill of `model` sends to: those named (of that model, whatever
    /// their `active` and `on`), or else the model's active ones. Their `when` applies.
    pub fn backfill_candidates(&self, model: &str, named: &[String]) -> Vec<Candidate> {
        self.webhooks
            .iter()
            .enumerate()
            .filter(|(_, webhook)| webhook.model == model)
            .filter(|(_, webhook)| {
                if named.is_empty() {
                    webhook.active
                } else {
                    named.contains(&webhook.name)
                }
            })
            .map(|(index, _)| Candidate(index))
            .collect()
    }

    /// The webhook a candidate is.
    pub fn webhook_name(&self, candidate: Candidate) -> &str {
        &self.webhooks[candidate.0].name
    }

    /// What `candidate` includes of related models.
    pub fn includes(&self, candidate: Candidate) -> &Includes {
        &self.webhooks[candidate.0].include
    }

    /// The event of `change` (its row with the candidate's relations in it) for
    /// `candidate`, or `None` when its `when` is false.
    pub fn event(&self, candidate: Candidate, change: &Change) -> Option<RoutedEvent> {
        event(
            &self.webhooks[candidate.0],
            change,
            &LazyChangeContext::default(),
            Condition::Check,
        )
    }

    /// The event of `change` for `candidate` when it cannot be rendered (its relations
    /// could not be looked up, its row was too large to read): it carries the reason
    /// instead of a request, and fails. Its `when` is not asked.
    pub fn unrouted_event(
        &self,
        candidate: Candidate,
        change: &Change,
        reason: RenderError,
    ) -> RoutedEvent {
        let webhook = &self.webhooks[candidate.0];
        let mut routed = event(
            webhook,
            change,
            &LazyChangeContext::default(),
            Condition::Ignore,
        )
        .expect("an event whose condition is not checked exists");
        routed.request = Err(reason);
        routed.body_is_envelope = false;
        routed
    }

    /// The event `change` creates for webhook `name`, whatever its `active`, `on`,
    /// `columns` and `when` say (`rowhook send-test`). The change is taken to be on the
    /// webhook's model; `None` when no webhook has that name.
    pub fn render_for(&self, name: &str, change: &Change) -> Option<RoutedEvent> {
        let webhook = self.webhooks.iter().find(|webhook| webhook.name == name)?;
        event(
            webhook,
            change,
            &LazyChangeContext::default(),
            Condition::Ignore,
        )
    }

    /// Every webhook name, in configuration order.
    pub fn webhook_names(&self) -> impl Iterator<Item = &str> {
        self.webhooks.iter().map(|webhook| webhook.name.as_str())
    }

    /// The model capturing `table`, when one does.
    pub fn model_for_table(&self, table: &TableName) -> Option<&str> {
        self.by_table.get(table).map(|routes| routes.model.as_str())
    }
}

/// `active`, `on` and `columns`: the rules decided without rendering anything.
fn matches_rules(webhook: &CompiledWebhook, change: &Change) -> bool {
    if !webhook.active || !webhook.on.contains(&change.action) {
        return false;
    }
    match (&webhook.columns, &change.changed) {
        (Some(columns), Some(changed)) if change.action == Action::Update => columns
            .iter()
            .any(|column| changed.iter().any(|name| name == column)),
        // Old values unknown: a change to the columns cannot be ruled out.
        _ => true,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    Check,
    Ignore,
}

/// The event of `change` for `webhook`, or `None` when its `when` is false.
fn event(
    webhook: &CompiledWebhook,
    change: &Change,
    shared: &LazyChangeContext,
    condition: Condition,
) -> Option<RoutedEvent> {
    let id = match change.action {
        Action::Read => backfill_event_id(
            change.position.sequence,
            change.position.transaction,
            &webhook.name,
        ),
        _ => event_id(change.position, &webhook.name),
    };
    let kind = format!("{}.{}", webhook.model, change.action.past_tense());
    let globals = webhook.needs_context.then(|| Globals {
        change: shared.get(change),
        event: event_context(&id, &kind, webhook, change),
    });
    let globals = globals.as_ref().map(|globals| globals as &dyn ObjectView);

    let mut condition_error = None;
    if condition == Condition::Check
        && let Some(when) = &webhook.when
    {
        match when.holds(globals) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => condition_error = Some(RenderError::template("when", error)),
        }
    }

    let envelope = envelope(change, &webhook.model, Some(&id));
    let request = match condition_error {
        Some(error) => Err(error),
        None => webhook.request.render(&RenderInput {
            envelope: &envelope,
            webhook: &webhook.name,
            globals,
        }),
    };
    let body_is_envelope = request.is_ok() && webhook.request.sends_envelope();
    Some(RoutedEvent {
        id,
        webhook: webhook.name.clone(),
        model: webhook.model.clone(),
        kind,
        envelope,
        request,
        body_is_envelope,
    })
}

/// `event` in the Liquid context: the envelope's own values (written by the same
/// functions as [`envelope`]) plus the webhook name.
fn event_context(
    id: &str,
    kind: &str,
    webhook: &CompiledWebhook,
    change: &Change,
) -> liquid::Object {
    event_object([
        ("id", id.to_string()),
        ("type", kind.to_string()),
        ("model", webhook.model.clone()),
        ("action", change.action.as_str().to_string()),
        ("table", change.table.to_string()),
        (
            "timestamp",
            rfc3339_from_unix_micros(change.commit_time_micros),
        ),
        ("lsn", change.lsn.to_string()),
        ("webhook", webhook.name.clone()),
    ])
}
