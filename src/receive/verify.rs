//! Checking a received request's Standard Webhooks signature, the way an integrator's
//! endpoint would: all three headers present, the timestamp recent, and one of the
//! signatures made with the secret over `id.timestamp.body`. Pure: the clock is an input.

use std::fmt;

use super::ReceivedRequest;
use crate::signature;

/// How far a `webhook-timestamp` may be from the receiver's clock. Standard Webhooks
/// libraries reject older (and future) messages so that a captured request cannot be
/// replayed later; five minutes is their default.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

const ID_HEADER: &str = "webhook-id";
const TIMESTAMP_HEADER: &str = "webhook-timestamp";
const SIGNATURE_HEADER: &str = "webhook-signature";

/// The verdict on one request, printed as `signature: valid` or
/// `signature: INVALID (reason)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    Invalid(String),
}

impl SignatureCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureCheck::Valid)
    }
}

impl fmt::Display for SignatureCheck {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureCheck::Valid => formatter.write_str("valid"),
            SignatureCheck::Invalid(reason) => write!(formatter, "INVALID ({reason})"),
        }
    }
}

/// Verifies `request` against `secret` (`whsec_…`) at `now_seconds` (Unix time).
pub fn check_signature(
    secret: &str,
    request: &ReceivedRequest,
    now_seconds: i64,
) -> SignatureCheck {
    let missing: Vec<&str> = [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
        .into_iter()
        .filter(|name| request.header(name).is_none())
        .collect();
    if !missing.is_empty() {
        let plural = if missing.len() == 1 { "" } else { "s" };
        return SignatureCheck::Invalid(format!("missing header{plural} {}", missing.join(", ")));
    }
    let id = request.header(ID_HEADER).unwrap_or_default();
    let timestamp = request.header(TIMESTAMP_HEADER).unwrap_or_default();
    let signatures = request.header(SIGNATURE_HEADER).unwrap_or_default();

    let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
        return SignatureCheck::Invalid(format!(
            "{TIMESTAMP_HEADER} {timestamp:?} is not a Unix time in seconds"
        ));
    };
    let skew = now_seconds.saturating_sub(sent_at);
    if skew.abs() > TIMESTAMP_TOLERANCE_SECONDS {
        let direction = if skew > 0 { "old" } else { "in the future" };
        return SignatureCheck::Invalid(format!(
            "{TIMESTAMP_HEADER} is {} s {direction}; at most {TIMESTAMP_TOLERANCE_SECONDS} s is accepted",
            skew.abs()
        ));
    }
    if signature::verify(secret, id, timestamp, &request.body, signatures) {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Invalid("no signature matches the secret and this body".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn request(headers: &[(&str, &str)], body: &str) -> ReceivedRequest {
        ReceivedRequest {
            received_at_ms: 0,
            method: "POST".into(),
            target: "/".into(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn signed(body: &str) -> ReceivedRequest {
        let timestamp = TIMESTAMP.to_string();
        request(
            &[
                (ID_HEADER, ID),
                (TIMESTAMP_HEADER, &timestamp),
                (SIGNATURE_HEADER, SIGNATURE),
            ],
            body,
        )
    }

    #[test]
    fn the_published_vector_is_valid() {
        let check = check_signature(SECRET, &signed(BODY), TIMESTAMP + 10);
        assert_eq!(check, SignatureCheck::Valid);
        assert_eq!(check.to_string(), "valid");
    }

    #[test]
    fn a_changed_body_or_another_secret_is_invalid() {
        let check = check_signature(SECRET, &signed(r#"{"test": 1}"#), TIMESTAMP);
        assert_eq!(
            check.to_string(),
            "INVALID (no signature matches the secret and this body)"
        );
        let other = "whsec_c2VjcmV0LWtleS1vZi10aGUtb3RoZXItc2VuZGVy";
        assert!(!check_signature(other, &signed(BODY), TIMESTAMP).is_valid());
    }

    #[test]
    fn missing_headers_are_named() {
        let check = check_signature(SECRET, &request(&[], BODY), TIMESTAMP);
        assert_eq!(
            check.to_string(),
            "INVALID (missing headers webhook-id, webhook-timestamp, webhook-signature)"
        );
        let only_signature = request(&[(ID_HEADER, ID), (TIMESTAMP_HEADER, "1")], BODY);
        assert_eq!(
            check_signature(SECRET, &only_signature, TIMESTAMP).to_string(),
            "INVALID (missing header webhook-signature)"
        );
    }

    #[test]
    fn stale_future_and_malformed_timestamps_are_invalid() {
        assert_eq!(
            check_signature(SECRET, &signed(BODY), TIMESTAMP + 301).to_string(),
            "INVALID (webhook-timestamp is 301 s old; at most 300 s is accepted)"
        );
        assert_eq!(
            check_signature(SECRET, &signed(BODY), TIMESTAMP - 400).to_string(),
            "INVALID (webhook-timestamp is 400 s in the future; at most 300 s is accepted)"
        );
        let malformed = request(
            &[
                (ID_HEADER, ID),
                (TIMESTAMP_HEADER, "yesterday"),
                (SIGNATURE_HEADER, SIGNATURE),
            ],
            BODY,
        );
        assert_eq!(
            check_signature(SECRET, &malformed, TIMESTAMP).to_string(),
            "INVALID (webhook-timestamp \"yesterday\" is not a Unix time in seconds)"
        );
    }
}
