//! `[[alerts]]`: where rowhook tells people that delivery or capture is in trouble
//! (CONTRACT §9), and each webhook's `alerts = […]`.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use toml::Table;

use super::reader::{Reader, index_path, key_path};
use super::webhook::{read_headers, read_name, read_secret, read_url};
use super::{DeliveryConfig, delivery};
use crate::secret::{MASK, mask_url_password};

/// An `[[alerts]]` target: where alerts are sent, which kinds, and how (CONTRACT §9).
/// Its alerts are delivered like a webhook's events: retries, signing, history.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertConfig {
    pub name: String,
    pub url: String,
    /// A Liquid template with `alert` in its context; the alert as JSON when unset.
    pub body: Option<String>,
    pub on: BTreeSet<AlertKind>,
    pub secret: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Lower-cased names of the headers whose value came from `${NAME}`.
    pub secret_headers: BTreeSet<String>,
    /// How long capture is down before `capture_down` is said.
    pub capture_down_after: Duration,
    /// The global `[delivery]` with the target's own keys applied.
    pub delivery: DeliveryConfig,
}

impl AlertConfig {
    /// The name its alerts are kept and delivered under, beside the webhooks: a colon
    /// never appears in a webhook name.
    pub fn queue_name(&self) -> String {
        format!("alert:{}", self.name)
    }
}

impl fmt::Debug for AlertConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AlertConfig")
            .field("name", &self.name)
            .field("url", &mask_url_password(&self.url))
            .field("on", &self.on)
            .field("secret", &self.secret.as_ref().map(|_| MASK))
            .field("capture_down_after", &self.capture_down_after)
            .finish_non_exhaustive()
    }
}

/// What an alert is about (CONTRACT §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// An event used up its retry schedule.
    EventFailed,
    /// Five attempts in a row failed.
    WebhookFailing,
    /// The first success after `webhook_failing`.
    WebhookRecovered,
    /// `pause_after` paused the webhook.
    WebhookPaused,
    /// Capture has not been streaming for `capture_down_after`.
    CaptureDown,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::EventFailed,
        AlertKind::WebhookFailing,
        AlertKind::WebhookRecovered,
        AlertKind::WebhookPaused,
        AlertKind::CaptureDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::EventFailed => "event_failed",
            AlertKind::WebhookFailing => "webhook_failing",
            AlertKind::WebhookRecovered => "webhook_recovered",
            AlertKind::WebhookPaused => "webhook_paused",
            AlertKind::CaptureDown => "capture_down",
        }
    }
}

const OWN_KEYS: [&str; 7] = [
    "name",
    "url",
    "body",
    "on",
    "secret",
    "headers",
    "capture_down_after",
];

/// How long capture may be down before `capture_down` is said, unless a target says.
const CAPTURE_DOWN_AFTER: Duration = Duration::from_secs(60);

pub(super) fn read_alerts(
    reader: &mut Reader,
    document: &Table,
    global_delivery: &DeliveryConfig,
) -> Vec<AlertConfig> {
    let mut alerts: Vec<AlertConfig> = Vec::new();
    for (index, table) in reader.array_of_tables(document, "", "alerts") {
        let path = index_path("alerts", index);
        delivery::reject_unknown_target_keys(reader, table, &path, &OWN_KEYS);
        let name = read_name(reader, table, &path, "alert target");
        if !name.is_empty() && alerts.iter().any(|alert| alert.name == name) {
            reader.error(
                key_path(&path, "name"),
                format!("duplicate alert target name {name:?}"),
            );
        }
        let url = read_url(reader, table, &path);
        let body = reader.string(table, &path, "body").map(|body| body.text);
        let on = read_kinds(reader, table, &path);
        let delivery = delivery::read_overrides(reader, table, &path, global_delivery);
        let secret = read_secret(reader, table, &path);
        let (headers, secret_headers) =
            read_headers(reader, table, &path, &delivery, secret.is_some());
        let capture_down_after = match reader.duration(table, &path, "capture_down_after") {
            Some(after) if after.is_zero() => {
                reader.error(
                    key_path(&path, "capture_down_after"),
                    "must be greater than 0s",
                );
                CAPTURE_DOWN_AFTER
            }
            Some(after) => after,
            None => CAPTURE_DOWN_AFTER,
        };
        alerts.push(AlertConfig {
            name,
            url,
            body,
            on,
            secret,
            headers,
            secret_headers,
            capture_down_after,
            delivery,
        });
    }
    alerts
}

fn read_kinds(reader: &mut Reader, table: &Table, path: &str) -> BTreeSet<AlertKind> {
    let Some(elements) = reader.string_array(table, path, "on") else {
        return AlertKind::ALL.into_iter().collect();
    };
    let mut kinds = BTreeSet::new();
    for (element_path, kind) in elements {
        match AlertKind::ALL
            .into_iter()
            .find(|known| known.as_str() == kind.text)
        {
            Some(known) => {
                kinds.insert(known);
            }
            None => reader.error(
                element_path,
                format!(
                    "unknown alert {:?}: expected {}",
                    kind.text,
                    AlertKind::ALL.map(AlertKind::as_str).join(", ")
                ),
            ),
        }
    }
    kinds
}

/// A webhook's `alerts = […]`: the targets told about it; every target when unset.
pub(super) fn read_webhook_alerts(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    targets: &[AlertConfig],
) -> Vec<String> {
    let Some(elements) = reader.string_array(table, path, "alerts") else {
        return targets.iter().map(|target| target.name.clone()).collect();
    };
    let mut names = Vec::with_capacity(elements.len());
    for (element_path, name) in elements {
        if targets.iter().any(|target| target.name == name.text) {
            names.push(name.text);
        } else if targets.is_empty() {
            reader.error(
                element_path,
                format!(
                    "no alert target {:?}: the file has no [[alerts]] table",
                    name.text
                ),
            );
        } else {
            let known: Vec<&str> = targets.iter().map(|target| target.name.as_str()).collect();
            reader.error(
                element_path,
                format!(
                    "no alert target {:?} (targets: {})",
                    name.text,
                    known.join(", ")
                ),
            );
        }
    }
    names
}
