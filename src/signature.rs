//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): `v1,` followed by
//! the base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, keyed with the base64-decoded
//! secret that follows the `whsec_` prefix. Pure: no clock, no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix Standard Webhooks puts before the base64 key.
const SECRET_PREFIX: &str = "whsec_";
/// The only signature scheme Standard Webhooks defines for symmetric keys.
const VERSION_PREFIX: &str = "v1,";

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the webhook secret is not valid base64 after the \"whsec_\" prefix")]
    SecretNotBase64(#[source] base64::DecodeError),
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// HMAC accepts keys of any length, so this is not expected; it keeps `sign` total.
    #[error("the webhook secret cannot key HMAC-SHA256")]
    Key(#[source] hmac::digest::InvalidLength),
}

/// The `webhook-signature` header value for one message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let key = decode_secret(secret)?;
    let mac = keyed_mac(&key, id, &timestamp.to_string(), body)?;
    let digest = mac.finalize().into_bytes();
    Ok(format!("{VERSION_PREFIX}{}", STANDARD.encode(digest)))
}

/// Whether `signature_header` holds at least one valid `v1,` signature of the message.
///
/// The header may carry several space-separated signatures, as senders do while
/// rotating secrets; entries of other versions are skipped. The comparison runs in
/// constant time (`Mac::verify_slice`), so a forger learns nothing from timing. A bad
/// secret or a malformed header verifies nothing rather than failing loudly: this answers
/// "is the message authentic", and a broken input means "no".
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Ok(key) = decode_secret(secret) else {
        return false;
    };
    signature_header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix(VERSION_PREFIX))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| {
            keyed_mac(&key, id, timestamp, body)
                .is_ok_and(|mac| mac.verify_slice(&candidate).is_ok())
        })
}

/// Whether `secret` can sign and verify: `whsec_` (optional) and a non-empty base64 key.
pub fn check_secret(secret: &str) -> Result<(), SignatureError> {
    decode_secret(secret).map(|_| ())
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, SignatureError> {
    // The prefix is optional so that a raw base64 key also works, as the official
    // libraries accept it.
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD
        .decode(encoded)
        .map_err(SignatureError::SecretNotBase64)?;
    if key.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    Ok(key)
}

fn keyed_mac(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<HmacSha256, SignatureError> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).map_err(SignatureError::Key)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_published_vector() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY).unwrap(), EXPECTED);
    }

    #[test]
    fn accepts_a_secret_without_prefix() {
        let bare = SECRET.trim_start_matches(SECRET_PREFIX);
        assert_eq!(sign(bare, ID, TIMESTAMP, BODY).unwrap(), EXPECTED);
    }

    #[test]
    fn verifies_the_published_vector() {
        assert!(verify(SECRET, ID, "1614265330", BODY, EXPECTED));
    }

    #[test]
    fn rejects_a_changed_body_id_or_timestamp() {
        assert!(!verify(
            SECRET,
            ID,
            "1614265330",
            br#"{"test": 1}"#,
            EXPECTED
        ));
        assert!(!verify(SECRET, "msg_other", "1614265330", BODY, EXPECTED));
        assert!(!verify(SECRET, ID, "1614265331", BODY, EXPECTED));
    }

    #[test]
    fn rejects_another_secret() {
        let other = "whsec_c2VjcmV0LWtleS1vZi10aGUtb3RoZXItc2VuZGVy";
        assert!(!verify(other, ID, "1614265330", BODY, EXPECTED));
    }

    #[test]
    fn accepts_any_of_several_signatures_during_rotation() {
        let old = sign(
            "whsec_c2VjcmV0LWtleS1vZi10aGUtb3RoZXItc2VuZGVy",
            ID,
            TIMESTAMP,
            BODY,
        )
        .unwrap();
        let both = format!("{old} {EXPECTED}");
        assert!(verify(SECRET, ID, "1614265330", BODY, &both));
        let with_unknown_version = format!("v2,abc {EXPECTED}");
        assert!(verify(
            SECRET,
            ID,
            "1614265330",
            BODY,
            &with_unknown_version
        ));
        assert!(!verify(SECRET, ID, "1614265330", BODY, &old));
    }

    #[test]
    fn rejects_malformed_headers() {
        assert!(!verify(SECRET, ID, "1614265330", BODY, ""));
        assert!(!verify(SECRET, ID, "1614265330", BODY, "v1,"));
        assert!(!verify(SECRET, ID, "1614265330", BODY, "v1,not base64!"));
        let without_version = EXPECTED.trim_start_matches(VERSION_PREFIX);
        assert!(!verify(SECRET, ID, "1614265330", BODY, without_version));
        let truncated = &EXPECTED[..EXPECTED.len() - 8];
        assert!(!verify(SECRET, ID, "1614265330", BODY, truncated));
    }

    #[test]
    fn reports_a_bad_secret() {
        assert!(matches!(
            sign("whsec_not*base64", ID, TIMESTAMP, BODY),
            Err(SignatureError::SecretNotBase64(_))
        ));
        assert!(matches!(
            sign("whsec_", ID, TIMESTAMP, BODY),
            Err(SignatureError::EmptySecret)
        ));
        assert!(check_secret("whsec_not*base64").is_err());
        assert!(check_secret(SECRET).is_ok());
        assert!(!verify(
            "whsec_not*base64",
            ID,
            "1614265330",
            BODY,
            EXPECTED
        ));
    }
}
