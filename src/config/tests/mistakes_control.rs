//! Mistakes in the keys of delivery control and inbound webhooks (CONTRACT §9, §11).

use super::*;

const ALERT_TARGET: &str =
    "\n[[alerts]]\nname = \"ops\"\nurl = \"https://chat.example.com/hook\"\n";

#[test]
fn alerts_name_targets_that_exist() {
    assert_eq!(
        error(&with_webhook("alerts = [\"ops\"]")),
        "config/rowhook.toml: webhooks[0].alerts[0]: no alert target \"ops\": the file has no \
         [[alerts]] table"
    );
    assert_eq!(
        error(&format!(
            "{}{ALERT_TARGET}",
            with_webhook("alerts = [\"pager\"]")
        )),
        "config/rowhook.toml: webhooks[0].alerts[0]: no alert target \"pager\" (targets: ops)"
    );
    assert_eq!(
        error(&format!("{MINIMAL}{ALERT_TARGET}on = [\"webhook_down\"]\n")),
        "config/rowhook.toml: alerts[0].on[0]: unknown alert \"webhook_down\": expected \
         event_failed, webhook_failing, webhook_recovered, webhook_paused, capture_down"
    );
    assert_eq!(
        error(&format!("{MINIMAL}\n[[alerts]]\nname = \"ops\"\n")),
        "config/rowhook.toml: alerts[0].url: missing required key"
    );
    assert_eq!(
        error(&format!("{MINIMAL}{ALERT_TARGET}{ALERT_TARGET}")),
        "config/rowhook.toml: alerts[1].name: duplicate alert target name \"ops\""
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}{ALERT_TARGET}capture_down_after = \"0s\"\n"
        )),
        "config/rowhook.toml: alerts[0].capture_down_after: must be greater than 0s"
    );
}

/// The minimal configuration with one inbound endpoint holding `keys` besides name and table.
fn with_endpoint(keys: &str) -> String {
    format!(
        "{MINIMAL}\n[inbound]\n\n[[inbound.endpoints]]\nname = \"tasks\"\ntable = \"inbox\"\n{keys}\n"
    )
}

#[test]
fn inbound_endpoints_are_checked_key_by_key() {
    let columns = "columns = { event_id = \"headers.webhook-id\", payload = \"body\" }";
    assert_eq!(
        error(&with_endpoint("columns = { title = \"item.title\" }")),
        "config/rowhook.toml: inbound.endpoints[0].columns.title: unknown source \"item.title\": \
         expected headers.NAME, query.NAME, body, body.a.b[0], now or 'text'"
    );
    assert_eq!(
        error(&with_endpoint("")),
        "config/rowhook.toml: inbound.endpoints[0].columns: missing required key"
    );
    assert_eq!(
        error(&with_endpoint(&format!("{columns}\ndedupe = \"id\""))),
        "config/rowhook.toml: inbound.endpoints[0].dedupe: \"id\" is not one of this endpoint's \
         columns"
    );
    assert_eq!(
        error(&with_endpoint(&format!(
            "{columns}\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
             basic = {{ user = \"a\", password = \"b\" }}"
        ))),
        "config/rowhook.toml: inbound.endpoints[0].basic: give basic or secret, not both: a \
         sender is checked one way"
    );
    assert_eq!(
        error(&with_endpoint(&format!("{columns}\nmax_body = \"1GB\""))),
        "config/rowhook.toml: inbound.endpoints[0].max_body: invalid size \"1GB\": expected e.g. \
         \"512KB\" or \"1MB\""
    );
    assert_eq!(
        error(&with_endpoint(&format!(
            "{columns}\nrespond = {{ status = 404 }}"
        ))),
        "config/rowhook.toml: inbound.endpoints[0].respond.status: must be a 2xx status: senders \
         retry anything else"
    );
    assert_eq!(
        error(&format!("{MINIMAL}\n[inbound]\nlisten = \"everywhere\"\n")),
        "config/rowhook.toml: inbound.listen: invalid address \"everywhere\": expected an IP \
         address and a port such as 127.0.0.1:8481"
    );
}
