//! Turning what went wrong in an attempt into an error kind and one line of text
//! (CONTRACT §6), without ever showing the URL, which may hold a password.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use reqwest::StatusCode;

use crate::deny::DeniedTarget;
use crate::event::ErrorKind;

/// Error texts are shown on one line in tables; longer causes are cut here.
pub(super) const ERROR_TEXT_LIMIT: usize = 300;

pub(super) struct Failure {
    pub(super) kind: ErrorKind,
    /// One line, for the attempt log.
    pub(super) text: String,
}

impl Failure {
    pub(super) fn new(kind: ErrorKind, text: String) -> Failure {
        Failure {
            kind,
            text: one_line(&text),
        }
    }
}

pub(super) fn invalid_request(reason: String) -> Failure {
    Failure::new(ErrorKind::Connect, format!("invalid request: {reason}"))
}

pub(super) fn denied_failure(denied: &DeniedTarget) -> Failure {
    Failure::new(ErrorKind::Denied, denied.to_string())
}

pub(super) fn sending_failure(error: &reqwest::Error, timeout: Duration) -> Failure {
    if error.is_timeout() {
        return timeout_failure(timeout, None);
    }
    // The guarded resolver's refusal, wrapped by the connector as a DNS error.
    if let Some(denied) = causes(error).find_map(|cause| cause.downcast_ref::<DeniedTarget>()) {
        return denied_failure(denied);
    }
    if let Some(tls) = tls_cause(error) {
        return Failure::new(ErrorKind::Tls, format!("TLS handshake failed: {tls}"));
    }
    if error.is_connect() {
        return Failure::new(ErrorKind::Connect, connect_text(error));
    }
    if is_malformed_answer(error) {
        return Failure::new(
            ErrorKind::Body,
            format!("the answer is not valid HTTP: {}", cause_text(error)),
        );
    }
    // The connection was made but closed or reset before a full answer head arrived.
    Failure::new(ErrorKind::Connect, connect_text(error))
}

pub(super) fn body_failure(
    error: &reqwest::Error,
    status: StatusCode,
    timeout: Duration,
) -> Failure {
    if error.is_timeout() {
        return timeout_failure(timeout, Some(status));
    }
    Failure::new(
        ErrorKind::Body,
        format!(
            "{} but the body could not be read: {}",
            status_line(status),
            cause_text(error)
        ),
    )
}

pub(super) fn timeout_failure(timeout: Duration, status: Option<StatusCode>) -> Failure {
    let within = duration_text(timeout);
    let text = match status {
        None => format!("no answer within {within}"),
        Some(status) => format!(
            "no complete answer within {within} ({} received, body unfinished)",
            status_line(status)
        ),
    };
    Failure::new(ErrorKind::Timeout, text)
}

pub(super) fn redirect_failure(status: StatusCode, location: Option<String>) -> Failure {
    let text = match location {
        Some(location) => format!(
            "redirect to {location} not followed ({})",
            status_line(status)
        ),
        None => format!("{} without a location, not followed", status_line(status)),
    };
    Failure::new(ErrorKind::Redirect, text)
}

pub(super) fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

pub(super) fn connect_text(error: &reqwest::Error) -> String {
    let plain = causes(error).find_map(|cause| {
        let io_error = cause.downcast_ref::<io::Error>()?;
        match io_error.kind() {
            io::ErrorKind::ConnectionRefused => Some("connection refused"),
            io::ErrorKind::ConnectionReset => Some("connection reset before an answer"),
            io::ErrorKind::ConnectionAborted => Some("connection aborted before an answer"),
            io::ErrorKind::BrokenPipe => Some("connection closed while sending the request"),
            _ => None,
        }
    });
    match plain {
        Some(text) => text.to_owned(),
        None if error.is_dns() => format!("DNS lookup failed: {}", cause_text(error)),
        None => cause_text(error),
    }
}

/// The rustls error, or another TLS-marked cause, behind a failed send.
pub(super) fn tls_cause(error: &reqwest::Error) -> Option<String> {
    if let Some(rustls_error) =
        causes(error).find_map(|cause| cause.downcast_ref::<rustls::Error>())
    {
        return Some(rustls_error.to_string());
    }
    // tokio-rustls reports some handshake failures (an early EOF) as plain io errors.
    causes(error).skip(1).find_map(|cause| {
        let text = cause.to_string();
        let lower = text.to_ascii_lowercase();
        ["tls", "ssl", "certificate", "handshake"]
            .iter()
            .any(|marker| lower.contains(marker))
            .then_some(text)
    })
}

/// hyper's parse errors: the peer answered, but not with HTTP.
pub(super) fn is_malformed_answer(error: &reqwest::Error) -> bool {
    const MARKERS: [&str; 6] = [
        "invalid HTTP",
        "message head is too large",
        "invalid URI",
        "URI too long",
        "received unexpected message",
        "invalid chunk",
    ];
    causes(error).skip(1).any(|cause| {
        let text = cause.to_string();
        MARKERS.iter().any(|marker| text.contains(marker))
    })
}

/// The error and its causes, outermost first. `io::Error` hides a wrapped error from
/// `source()` (it returns the wrapped error's own source), so it is unwrapped by hand:
/// that is where rustls and hyper errors sit.
pub(super) fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&current| {
        match current
            .downcast_ref::<io::Error>()
            .and_then(|io_error| io_error.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        }
    })
}

/// The innermost cause: the one that says what went wrong ("connection refused", "end
/// of file before message length reached") without the wrappers' repeats. reqwest's
/// own message is used only when there is nothing below it, cut before the URL, which
/// may hold a password.
pub(super) fn cause_text(error: &reqwest::Error) -> String {
    match causes(error).skip(1).last() {
        Some(innermost) => innermost.to_string(),
        None => {
            let whole = error.to_string();
            match whole.split_once(" for url (") {
                Some((message, _url)) => message.to_owned(),
                None => whole,
            }
        }
    }
}

pub(super) fn duration_text(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    if milliseconds.is_multiple_of(1000) {
        format!("{}s", milliseconds / 1000)
    } else {
        format!("{milliseconds}ms")
    }
}

/// Control characters become spaces and long texts are cut, so that one error is one
/// line in every listing.
pub(super) fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .take(ERROR_TEXT_LIMIT)
        .collect();
    if text.chars().count() > ERROR_TEXT_LIMIT {
        line.push('…');
    }
    line
}
