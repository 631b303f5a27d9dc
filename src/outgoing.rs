//! The request an attempt actually sends: the stored request plus the headers delivery
//! adds — `user-agent`, the event id, and with a secret the Standard Webhooks signature
//! (CONTRACT §3). Built here once, for delivery and for the history that shows it.

use crate::event::Request;
use crate::signature::{self, SignatureError};

/// `rowhook/<version>`, on every request.
pub const USER_AGENT: &str = concat!("rowhook/", env!("CARGO_PKG_VERSION"));
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// What the added headers depend on.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    /// The header that carries the event id (`[delivery] event_id_header`).
    pub event_id_header: &'a str,
    /// The Standard Webhooks `whsec_…` secret, when the webhook signs its requests.
    pub secret: Option<&'a str>,
}

impl std::fmt::Debug for Outgoing<'_> {
    // Written by hand so that the secret never reaches a log line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Outgoing")
            .field("event_id", &self.event_id)
            .field("event_id_header", &self.event_id_header)
            .field("secret", &self.secret.map(|_| crate::secret::MASK))
            .finish()
    }
}

impl Outgoing<'_> {
    /// The headers an attempt sends, in order: the stored headers, `user-agent`, the
    /// event-id header, and with a secret the three Standard Webhooks headers signed over
    /// the stored body (empty when there is none) at `timestamp` (Unix seconds).
    ///
    /// The headers rowhook owns (user agent, event-id header, and the signing headers when
    /// signing) replace stored headers of the same name, compared case-insensitively, so
    /// the receiver sees exactly one value and it is the one that verifies. `webhook-id`
    /// is sent once when it is also the event-id header.
    ///
    /// Fails only when the secret cannot be used, which configuration validation prevents.
    pub fn headers(
        &self,
        request: &Request,
        timestamp: i64,
    ) -> Result<Vec<(String, String)>, SignatureError> {
        let body = request.body.as_deref().unwrap_or_default().as_bytes();
        let signature = self
            .secret
            .map(|secret| signature::sign(secret, self.event_id, timestamp, body))
            .transpose()?;

        let mut owned = vec![self.event_id_header, "user-agent"];
        if signature.is_some() {
            owned.extend([WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]);
        }
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .filter(|(name, _)| !owned.iter().any(|own| own.eq_ignore_ascii_case(name)))
            .cloned()
            .collect();

        headers.push(("user-agent".to_owned(), USER_AGENT.to_owned()));
        headers.push((self.event_id_header.to_owned(), self.event_id.to_owned()));
        if let Some(signature) = signature {
            if !self.event_id_header.eq_ignore_ascii_case(WEBHOOK_ID) {
                headers.push((WEBHOOK_ID.to_owned(), self.event_id.to_owned()));
            }
            headers.push((WEBHOOK_TIMESTAMP.to_owned(), timestamp.to_string()));
            headers.push((WEBHOOK_SIGNATURE.to_owned(), signature));
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn post(url: &str, body: &str) -> Request {
        Request {
            method: "POST".to_owned(),
            url: url.to_owned(),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: Some(body.to_owned()),
        }
    }

    fn outgoing(secret: Option<&str>) -> Outgoing<'_> {
        Outgoing {
            event_id: "evt_0000000016B3748_order-to-warehouse",
            event_id_header: "webhook-id",
            secret,
        }
    }

    #[test]
    fn headers_without_secret_carry_event_id_and_user_agent() {
        let request = post("http://example.com/", "{}");
        let mut custom = outgoing(None);
        custom.event_id_header = "X-Event-Id";
        let headers = custom.headers(&request, 1_614_265_330).unwrap();
        let user_agent = concat!("rowhook/", env!("CARGO_PKG_VERSION"));
        let expected = [
            ("content-type", "application/json"),
            ("user-agent", user_agent),
            ("X-Event-Id", "evt_0000000016B3748_order-to-warehouse"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        assert_eq!(headers, expected);
    }

    #[test]
    fn headers_with_secret_and_custom_event_header_carry_both_ids() {
        let request = post("http://example.com/", r#"{"test": 2432232314}"#);
        let mut custom = outgoing(Some(SECRET));
        custom.event_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        custom.event_id_header = "X-Event-Id";
        let headers = custom.headers(&request, 1_614_265_330).unwrap();
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "user-agent",
                "X-Event-Id",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature"
            ]
        );
        assert_eq!(headers[4].1, "1614265330");
        assert_eq!(
            headers[5].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn owned_headers_replace_stored_ones_user_agent_included() {
        let mut request = post("http://example.com/", "{}");
        request.headers.extend([
            ("User-Agent".to_owned(), "warehouse-client".to_owned()),
            ("Webhook-Id".to_owned(), "forged".to_owned()),
            ("webhook-signature".to_owned(), "v1,forged".to_owned()),
        ]);
        let headers = outgoing(Some(SECRET)).headers(&request, 1).unwrap();
        let count = |wanted: &str| {
            headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(wanted))
                .count()
        };
        assert_eq!(count("webhook-id"), 1);
        assert_eq!(count("webhook-signature"), 1);
        assert_eq!(count("user-agent"), 1);
        // CONTRACT §3: every request says rowhook/<version> (config refuses the header; a
        // stored request from an older version still cannot override it).
        assert!(headers.contains(&("user-agent".to_owned(), USER_AGENT.to_owned())));
        assert!(
            !headers
                .iter()
                .any(|(_, value)| value.contains("forged") || value == "warehouse-client")
        );
    }

    #[test]
    fn signature_covers_an_empty_body_when_there_is_none() {
        let request = Request {
            method: "DELETE".to_owned(),
            url: "http://example.com/".to_owned(),
            headers: Vec::new(),
            body: None,
        };
        let attempt_outgoing = outgoing(Some(SECRET));
        let headers = attempt_outgoing.headers(&request, 1_700_000_000).unwrap();
        let signature_header = &headers.last().unwrap().1;
        assert!(signature::verify(
            SECRET,
            attempt_outgoing.event_id,
            "1700000000",
            b"",
            signature_header
        ));
    }

    #[test]
    fn debug_masks_the_secret() {
        let shown = format!("{:?}", outgoing(Some(SECRET)));
        assert!(!shown.contains("MfKQ9r8"), "{shown}");
        assert!(shown.contains("••••"));
    }
}
