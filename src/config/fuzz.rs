//! Fuzz target `config_loader`: configuration files, from the examples shipped in
//! `config/` and the README's snippets, through TOML parsing, `${VAR}` expansion,
//! validation and template compilation. Any text must load or give errors with key
//! paths; none may panic.

use std::path::Path;

use super::parse;
use crate::fuzz::{Target, fuzz};

/// Every well-formed variable is set, but `UNSET`: the expansion's success and its
/// "not set" error are both reached, and URLs and secrets look like real ones.
fn environment(name: &str) -> Option<String> {
    let value = match name {
        "UNSET" => return None,
        name if name.ends_with("_URL") => "postgres://rowhook:pa55@db.internal/shop",
        name if name.contains("SECRET") => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "token-${NOT_EXPANDED_AGAIN}",
    };
    Some(value.to_string())
}

fn load(input: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(input);
    if let Err(errors) = parse(Path::new("config/fuzz.toml"), &text, &environment) {
        if errors.0.is_empty() {
            return Err("a failed load without a reason".to_string());
        }
        let _ = errors.to_string();
    }
    Ok(())
}

#[test]
fn config_loader() {
    fuzz(Target {
        name: "config_loader",
        dictionary: &[
            b"${",
            b"$${",
            b"}",
            b"${UNSET}",
            b"${DATABASE_URL}",
            b"${1x}",
            b"\n[source]\n",
            b"\n[[webhooks]]\n",
            b"\n[models.order]\n",
            b"\n[[alerts]]\n",
            b"\n[inbound]\n",
            b"\n[store]\n",
            b"\n[delivery]\n",
            b"\n[admin]\n",
            b" = ",
            b"\"",
            b"'",
            b"'''",
            b"\"\"\"",
            b"[",
            b"]",
            b"{",
            b"}",
            b",",
            b".",
            b"\\u0000",
            b"{{ item.id }}",
            b"{% if %}",
            b"{%",
            b"%}",
            b"-1",
            b"9223372036854775807",
            b"1e400",
            b"\"0s\"",
            b"\"1ms\"",
            b"\"99999999999h\"",
            b"true",
            b"#",
        ],
        max_length: 16_384,
        extra_corpus: &["config", "config/examples"],
        execute: &load,
    });
}
