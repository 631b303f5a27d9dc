//! Token authentication: `Authorization: Bearer <token>`, or HTTP Basic with any user
//! name and the token as password (so a browser can ask for it).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::server::AdminState;

/// Makes a browser show its log-in prompt.
const CHALLENGE: &str = "Basic realm=\"rowhook\"";

/// Compares in time that depends only on the lengths, so the answer time does not tell
/// an attacker how many leading bytes of a guess were right.
pub(crate) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// The secret an `Authorization` header offers: the bearer token, or the Basic password.
pub(crate) fn offered_secret(authorization: &str) -> Option<Vec<u8>> {
    let (scheme, credentials) = authorization.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(credentials.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(credentials).ok()?;
        let colon = decoded.iter().position(|&byte| byte == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

/// Whether the header carries `token`. An empty configured token matches nothing.
pub(crate) fn authorized(authorization: Option<&str>, token: &str) -> bool {
    match authorization.and_then(offered_secret) {
        Some(secret) => !token.is_empty() && constant_time_eq(&secret, token.as_bytes()),
        None => false,
    }
}

/// Middleware for every route but `/healthz` and `/metrics`. Without an `[admin]` table
/// there is no token, so every request is refused.
pub(crate) async fn require_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let token = state
        .config
        .admin
        .as_ref()
        .map_or("", |admin| admin.token.as_str());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if authorized(authorization, token) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "authentication required: the admin token as bearer token or Basic password\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_and_password: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_and_password))
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"secret", b""));
    }

    #[test]
    fn bearer_token() {
        assert!(authorized(Some("Bearer s3cret"), "s3cret"));
        assert!(authorized(Some("bearer s3cret"), "s3cret"));
        assert!(!authorized(Some("Bearer wrong"), "s3cret"));
        assert!(!authorized(Some("Bearer "), "s3cret"));
    }

    #[test]
    fn basic_with_token_as_password() {
        assert!(authorized(Some(&basic("admin:s3cret")), "s3cret"));
        assert!(authorized(Some(&basic(":s3cret")), "s3cret"));
        // A password may itself hold colons; only the first one ends the user name.
        assert!(authorized(Some(&basic("me:a:b")), "a:b"));
        assert!(!authorized(Some(&basic("s3cret:wrong")), "s3cret"));
        assert!(!authorized(Some(&basic("s3cret")), "s3cret"));
        assert!(!authorized(Some("Basic not-base64!"), "s3cret"));
    }

    #[test]
    fn missing_or_unknown_scheme() {
        assert!(!authorized(None, "s3cret"));
        assert!(!authorized(Some("s3cret"), "s3cret"));
        assert!(!authorized(Some("Token s3cret"), "s3cret"));
        assert!(!authorized(Some("Bearer "), ""));
    }
}
