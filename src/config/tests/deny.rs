//! `[delivery] deny`, the SSRF guard (CONTRACT §12).

use crate::deny::{DenyList, DenyRange, NamedRange};

use super::*;

#[test]
fn no_guard_by_default() {
    assert_eq!(parsed(MINIMAL).deny, DenyList::default());
}

#[test]
fn names_blocks_and_addresses_are_read_in_order() {
    let config = parsed(&format!(
        "{MINIMAL}\n[delivery]\ndeny = [\"private\", \"loopback\", \"link-local\", \"10.1.0.0/16\", \"fd00:1::/32\", \"203.0.113.7\"]\n"
    ));
    let written: Vec<String> = config
        .deny
        .ranges()
        .iter()
        .map(DenyRange::to_string)
        .collect();
    assert_eq!(
        written,
        [
            "private",
            "loopback",
            "link-local",
            "10.1.0.0/16",
            "fd00:1::/32",
            "203.0.113.7/32"
        ]
    );
    assert_eq!(
        config.deny.ranges()[1],
        DenyRange::Named(NamedRange::Loopback)
    );
}

#[test]
fn each_mistaken_entry_is_named_by_its_key_path() {
    assert_eq!(
        errors(&format!(
            "{MINIMAL}\n[delivery]\ndeny = [\"loopback\", \"privat\", \"10.1.2.3/16\", 7]\n"
        )),
        [
            // Elements of the wrong type are reported as the array is read, before any
            // entry is judged.
            "config/rowhook.toml: delivery.deny[3]: expected a string, found an integer",
            "config/rowhook.toml: delivery.deny[1]: unknown range \"privat\": expected loopback, \
             private, link-local, unspecified, multicast, shared, an address or a CIDR block \
             such as \"10.1.0.0/16\"",
            "config/rowhook.toml: delivery.deny[2]: \"10.1.2.3/16\" has address bits set past \
             the prefix length; write the block's first address",
        ]
    );
    assert_eq!(
        error(&format!("{MINIMAL}\n[delivery]\ndeny = \"loopback\"\n")),
        "config/rowhook.toml: delivery.deny: expected an array of strings, found a string"
    );
}

#[test]
fn deny_is_not_a_per_webhook_key() {
    assert_eq!(
        error(&with_webhook("deny = [\"loopback\"]")),
        "config/rowhook.toml: webhooks[0].deny: only in [delivery]: one deny list holds for \
         every webhook and alert target"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}\n[[alerts]]\nname = \"ops\"\nurl = \"https://chat.example.com/hook\"\ndeny = []\n"
        )),
        "config/rowhook.toml: alerts[0].deny: only in [delivery]: one deny list holds for \
         every webhook and alert target"
    );
}
