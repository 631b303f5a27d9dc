//! Loading tests: `mistakes` asserts the exact message of each kind of error, `valid`
//! the values of configurations that load.

mod deny;
mod mistakes;
mod mistakes_control;
mod relations;
mod valid;

use std::path::Path;

use super::*;

const FILE: &str = "config/rowhook.toml";

fn environment(name: &str) -> Option<String> {
    let value = match name {
        "DATABASE_URL" => "postgres://rowhook:pa55@db.internal/shop?sslmode=require",
        "ADMIN_TOKEN" => "admin-token",
        "WMS_TOKEN" => "wms-token",
        "WMS_HOST" => "wms.example.com",
        "SIGNING_SECRET" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => return None,
    };
    Some(value.to_string())
}

fn parsed(text: &str) -> Config {
    match parse(Path::new(FILE), text, &environment) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    let errors = parse(Path::new(FILE), text, &environment).unwrap_err();
    errors.0.iter().map(ConfigError::to_string).collect()
}

/// Asserts that `text` has exactly one problem, and returns its message.
fn error(text: &str) -> String {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

const MINIMAL: &str = r#"
[source]
url = "${DATABASE_URL}"

[models.order]
table = "orders"
"#;

/// The minimal configuration with one webhook holding `keys` besides name, model and url.
fn with_webhook(keys: &str) -> String {
    format!(
        "{MINIMAL}\n[[webhooks]]\nname = \"hook\"\nmodel = \"order\"\n\
         url = \"https://example.com/hook\"\n{keys}\n"
    )
}
