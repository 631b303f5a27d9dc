//! Who sent an inbound request: HTTP Basic credentials compared in constant time, or a
//! Standard Webhooks signature over id, timestamp and body, within five minutes of now.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::admin::constant_time_eq;
use crate::config::SenderCheck;
use crate::signature;

/// How far a signed request's timestamp may be from now, either way (replays older than
/// this are refused).
pub(crate) const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;

/// `Ok` when the request comes from whom the endpoint expects; else why not (logged,
/// never sent back in detail).
pub(crate) fn check_sender(
    check: &SenderCheck,
    headers: &HeaderMap,
    body: &[u8],
    now_seconds: i64,
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match check {
        SenderCheck::None => Ok(()),
        SenderCheck::Basic { user, password } => {
            let (offered_user, offered_password) = header("authorization")
                .and_then(basic_credentials)
                .ok_or("no Basic credentials")?;
            // Both compared, whatever the first gives, so timing tells nothing.
            let user_matches = constant_time_eq(offered_user.as_bytes(), user.as_bytes());
            let password_matches =
                constant_time_eq(offered_password.as_bytes(), password.as_bytes());
            if user_matches & password_matches {
                Ok(())
            } else {
                Err("wrong Basic credentials")
            }
        }
        SenderCheck::Signature { secret } => {
            let (Some(id), Some(timestamp), Some(signature)) = (
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
            ) else {
                return Err("no Standard Webhooks signature headers");
            };
            let sent_at: i64 = timestamp
                .trim()
                .parse()
                .map_err(|_| "unreadable timestamp")?;
            if (now_seconds - sent_at).abs() > TIMESTAMP_TOLERANCE_SECONDS {
                return Err("timestamp too far from now");
            }
            if signature::verify(secret, id, timestamp, body, signature) {
                Ok(())
            } else {
                Err("signature does not verify")
            }
        }
    }
}

/// User and password of `Basic <base64(user:password)>`.
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn basic_credentials_must_match_both() {
        let check = SenderCheck::Basic {
            user: "bpium".into(),
            password: "pa:ss".into(),
        };
        let with = |user_password: &str| {
            headers(&[(
                "authorization",
                format!("Basic {}", STANDARD.encode(user_password)),
            )])
        };
        assert_eq!(check_sender(&check, &with("bpium:pa:ss"), b"", 0), Ok(()));
        assert!(check_sender(&check, &with("bpium:wrong"), b"", 0).is_err());
        assert!(check_sender(&check, &with("other:pa:ss"), b"", 0).is_err());
        assert!(check_sender(&check, &HeaderMap::new(), b"", 0).is_err());
        let bearer = headers(&[("authorization", "Bearer pa:ss".into())]);
        assert!(check_sender(&check, &bearer, b"", 0).is_err());
    }

    #[test]
    fn signatures_verify_within_the_tolerance() {
        let check = SenderCheck::Signature {
            secret: SECRET.into(),
        };
        let body = br#"{"title":"x"}"#;
        let now = 1_700_000_000;
        let signed = |timestamp: i64, body: &[u8]| {
            let signature = signature::sign(SECRET, "msg_1", timestamp, body).unwrap();
            headers(&[
                ("webhook-id", "msg_1".into()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", format!("v1,bm90aGluZw== {signature}")),
            ])
        };
        assert_eq!(check_sender(&check, &signed(now, body), body, now), Ok(()));
        assert_eq!(
            check_sender(&check, &signed(now - 299, body), body, now),
            Ok(())
        );
        assert!(check_sender(&check, &signed(now - 301, body), body, now).is_err());
        assert!(check_sender(&check, &signed(now + 301, body), body, now).is_err());
        assert!(check_sender(&check, &signed(now, b"other"), body, now).is_err());
        assert!(check_sender(&check, &HeaderMap::new(), body, now).is_err());
    }
}
