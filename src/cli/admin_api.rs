//! The running service's admin API, as the CLI's `events` and `backfill` commands ask it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode, Url};
use rowhook::config::AdminConfig;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How long to wait for the running service's admin API.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// The running service's admin API.
pub(crate) struct AdminApi {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl AdminApi {
    pub(crate) fn new(admin: &AdminConfig) -> anyhow::Result<AdminApi> {
        let http = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        let base = Url::parse(&format!("http://{}/", admin_address(admin)))
            .context("the admin listen address does not make a URL")?;
        Ok(AdminApi {
            http,
            base,
            token: admin.token.clone(),
        })
    }

    /// Calls the API and reads its JSON answer as `T` (`null` for an empty body). `event`
    /// names the event the route is about, so that a 404 reads "no event …".
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        event: Option<&str>,
    ) -> anyhow::Result<T> {
        match self.send(method, segments, query, None).await? {
            Answer::Success(value) => Ok(value),
            Answer::Refused { status, message } => match (status, event) {
                (StatusCode::NOT_FOUND, Some(id)) => Err(anyhow!("no event {id}")),
                _ => Err(anyhow!("the admin API answered {status}: {message}")),
            },
        }
    }

    /// Sends a request (with a JSON body, if given) and tells success from refusal,
    /// so a caller can tell the user's mistake (4xx) from the service's.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer<T>> {
        let mut url = self.base.clone();
        // Pushed as segments so that an id typed by hand is escaped, not interpreted.
        url.path_segments_mut()
            .map_err(|()| anyhow!("the admin URL {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(name, value)| (*name, value.as_str())));
        }
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("no rowhook service answers at {}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("reading the admin API's answer failed")?;
        if status.is_success() {
            let text = if text.trim().is_empty() {
                "null"
            } else {
                &text
            };
            return serde_json::from_str(text)
                .map(Answer::Success)
                .context("the admin API answered JSON of an unexpected shape");
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(anyhow!(
                "the admin API at {} refused the token (admin.token)",
                self.base
            ));
        }
        Ok(Answer::Refused {
            status,
            message: error_message(&text),
        })
    }
}

/// What the admin API made of a request.
pub(crate) enum Answer<T> {
    Success(T),
    Refused { status: StatusCode, message: String },
}

/// Where to reach the admin server: a wildcard listen address is reached on loopback.
fn admin_address(admin: &AdminConfig) -> std::net::SocketAddr {
    let mut address = admin.listen;
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    address
}

/// The `error` of a JSON error answer, else the body as it is.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| {
            value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_admin_addresses_are_reached_on_loopback() {
        let admin = |listen: &str| AdminConfig {
            listen: listen.parse().unwrap(),
            token: "token".into(),
        };
        assert_eq!(
            admin_address(&admin("0.0.0.0:8480")).to_string(),
            "127.0.0.1:8480"
        );
        assert_eq!(admin_address(&admin("[::]:8480")).to_string(), "[::1]:8480");
        assert_eq!(
            admin_address(&admin("10.0.0.1:8480")).to_string(),
            "10.0.0.1:8480"
        );
    }

    #[test]
    fn error_messages_come_from_json_answers() {
        assert_eq!(error_message(r#"{"error":"bad status"}"#), "bad status");
        assert_eq!(error_message(" plain \n"), "plain");
    }
}
