//! The shipped configurations stay valid: `config/rowhook.toml` and every file in
//! `config/examples/` pass `rowhook check --offline`, the check a user runs first.
//!
//! Needs no database. The environment variables a file names with `${NAME}` are found
//! by reading the file and set to sample values, so a new example or a new variable
//! needs no change here. The sample value follows the variable's name:
//! `…DATABASE_URL` a PostgreSQL URL, `…_SECRET` a Standard Webhooks key, `…_URL` an
//! https URL, anything else a plain token.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const MINIMUM_EXAMPLES: usize = 5;

fn config_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// `config/rowhook.toml` and the `*.toml` files of `config/examples/`, sorted.
fn shipped_files() -> Vec<PathBuf> {
    let examples = config_directory().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", examples.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= MINIMUM_EXAMPLES,
        "expected at least {MINIMUM_EXAMPLES} examples in {}, found {}",
        examples.display(),
        files.len()
    );
    files.insert(0, config_directory().join("rowhook.toml"));
    files
}

/// The names of every `${NAME}` in `text`, following the loader's rules: `$${` is a
/// literal and names no variable.
fn referenced_variables(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else { break };
            let name = &tail[..end];
            let is_name = name
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && name
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || character == '_');
            if is_name {
                names.insert(name.to_string());
            }
            rest = &tail[end + 1..];
        } else {
            rest = &after[1..];
        }
    }
    names
}

/// A value that passes validation wherever a variable of this name is used.
fn sample_value(name: &str) -> &'static str {
    if name.ends_with("DATABASE_URL") {
        "postgres://rowhook:sample-password@db.example.com:5432/shop?sslmode=require"
    } else if name.ends_with("_SECRET") {
        "whsec_cm93aG9vay1zYW1wbGUtc2lnbmluZy1rZXktMzItYnk="
    } else if name.ends_with("_URL") {
        "https://hooks.example.com/sample"
    } else {
        "sample-token-0123456789"
    }
}

/// The problems of one file, or `None` when it is valid and keeps secrets out of the file.
fn problems(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut check = Command::new(env!("CARGO_BIN_EXE_rowhook"));
    check
        .arg("--config")
        .arg(file)
        .args(["check", "--offline"])
        .env_remove("ROWHOOK_CONFIG");
    for name in referenced_variables(&text) {
        check.env(&name, sample_value(&name));
    }
    let output = check.output().unwrap();
    if !output.status.success() {
        return Some(format!(
            "`rowhook check --offline` exited with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    secrets_in_file(&text)
}

/// Examples are copied into production: the database URL and signing secrets must come
/// from the environment, never be written in the file.
fn secrets_in_file(text: &str) -> Option<String> {
    let document: toml::Table = text.parse().unwrap();
    let mut found = Vec::new();
    let source_url = document
        .get("source")
        .and_then(|source| source.get("url"))
        .and_then(toml::Value::as_str);
    if !source_url.is_some_and(|url| url.contains("${")) {
        found.push("source.url is not taken from ${NAME}".to_string());
    }
    let webhooks = document
        .get("webhooks")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (index, webhook) in webhooks.iter().enumerate() {
        if let Some(secret) = webhook.get("secret").and_then(toml::Value::as_str)
            && !secret.contains("${")
        {
            found.push(format!(
                "webhooks[{index}].secret is not taken from ${{NAME}}"
            ));
        }
    }
    (!found.is_empty()).then(|| found.join("\n"))
}

#[test]
fn shipped_configurations_pass_check() {
    let failures: Vec<String> = shipped_files()
        .iter()
        .filter_map(|file| {
            problems(file).map(|problems| format!("{}:\n{problems}", file.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn variables_are_found_as_the_loader_reads_them() {
    let text = "url = \"${DATABASE_URL}\"\nbody = \"$${{ item.price }} $${NOT_A_VARIABLE}\"\n\
                headers = { A = \"Bearer ${API_TOKEN}\", B = \"${bad name}\" }";
    assert_eq!(
        referenced_variables(text),
        BTreeSet::from(["API_TOKEN".to_string(), "DATABASE_URL".to_string()])
    );
}
