//! The requests alerts send (CONTRACT §9): a POST of the alert as JSON, or of the
//! target's `body` template rendered with `alert` in its context. Bodies are compiled
//! once, with the webhooks' templates, so a mistake is reported at load.

use liquid::{Parser, Template};
use serde_json::Value;

use super::template;
use crate::config::{AlertConfig, ConfigError};
use crate::event::Request;

/// Each target's compiled `body`, by its place in `[[alerts]]`.
#[derive(Default)]
pub(super) struct AlertBodies(Vec<Option<Template>>);

impl std::fmt::Debug for AlertBodies {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_tuple("AlertBodies")
            .field(&self.0.len())
            .finish()
    }
}

impl AlertBodies {
    pub(super) fn compile(
        parser: &Parser,
        file: &std::path::Path,
        targets: &[AlertConfig],
        errors: &mut Vec<ConfigError>,
    ) -> AlertBodies {
        let bodies = targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let body = target.body.as_deref()?;
                template::compile(parser, body)
                    .map_err(|reason| {
                        errors.push(ConfigError {
                            file: file.to_path_buf(),
                            key: format!("alerts[{index}].body"),
                            reason,
                        });
                    })
                    .ok()
            })
            .collect();
        AlertBodies(bodies)
    }

    /// The request of `alert` (as JSON) for the target at `index`.
    pub(super) fn request(
        &self,
        index: usize,
        target: &AlertConfig,
        alert: &Value,
    ) -> Result<Request, String> {
        let body = match self.0.get(index).and_then(Option::as_ref) {
            Some(template) => {
                let globals = liquid::to_object(&serde_json::json!({ "alert": alert }))
                    .map_err(|error| format!("body: {error}"))?;
                template
                    .render(&globals)
                    .map_err(|error| format!("body: {error}"))?
            }
            None => alert.to_string(),
        };
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        headers.extend(target.headers.iter().cloned());
        Ok(Request {
            method: "POST".to_string(),
            url: target.url.clone(),
            headers,
            body: Some(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use crate::config::parse;
    use crate::route::Router;

    fn config(alerts: &str) -> crate::config::Config {
        let text = format!(
            "[source]\nurl = \"postgres://localhost/db\"\n\n[models.order]\ntable = \"orders\"\n\n\
             [[alerts]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/chat\"\n\
             headers = {{ X-Team = \"shop\" }}\n{alerts}"
        );
        parse(Path::new("rowhook.toml"), &text, &|_| None).unwrap()
    }

    #[test]
    fn an_alert_is_its_json_or_the_body_rendered_with_alert() {
        let alert = json!({"kind": "event_failed", "webhook": "erp", "message": "3 events failed"});
        let plain = config("");
        let router = Router::new(&plain).unwrap();
        let request = router.alert_request(0, &plain.alerts[0], &alert).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:9/chat");
        assert_eq!(request.body.as_deref(), Some(alert.to_string().as_str()));
        assert!(
            request
                .headers
                .contains(&("X-Team".to_string(), "shop".to_string()))
        );
        let templated = config(
            "body = \"\"\"{\"text\": \"{{ alert.webhook }} {{ alert.kind }}: {{ alert.message }}\"}\"\"\"\n",
        );
        let router = Router::new(&templated).unwrap();
        let request = router
            .alert_request(0, &templated.alerts[0], &alert)
            .unwrap();
        assert_eq!(
            request.body.as_deref(),
            Some(r#"{"text": "erp event_failed: 3 events failed"}"#)
        );
    }

    #[test]
    fn a_body_that_does_not_compile_is_a_configuration_error() {
        let broken = config("body = \"{{ alert.kind \"\n");
        let errors = Router::new(&broken).unwrap_err().to_string();
        assert!(
            errors.starts_with("rowhook.toml: alerts[0].body: "),
            "{errors}"
        );
    }
}
