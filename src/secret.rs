//! Masking: how secrets are shown in the history, the pages, the API and the logs.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a password or other secret is shown as.
pub const MASK: &str = "••••";

/// Values shorter than this are not masked wherever they appear: a `${PORT}` of `80`
/// would turn every `80` in the history into `••••`. (Real secrets are longer.)
const SHORTEST_MASKED: usize = 4;

/// The secret values of a configuration (CONTRACT §6, §12): every value substituted for
/// a `${VAR}`, the signing secrets, the admin token, `Authorization` values and
/// inbound passwords. Wherever one appears in text shown to anyone — a URL, a header, a
/// body, an error, an answer's body, a log line — it is shown as [`MASK`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<String>,
}

/// Shows how many values there are, never a value: a `Config` printed with `{:?}` (in a
/// panic, a test failure) must not show what its own `Debug` forms mask.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Secrets({} values)", self.values.len())
    }
}

impl Secrets {
    pub fn new(values: impl IntoIterator<Item = String>) -> Secrets {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|value| value.chars().count() >= SHORTEST_MASKED)
            .collect();
        values.sort_by(|one, other| other.len().cmp(&one.len()).then_with(|| one.cmp(other)));
        values.dedup();
        Secrets { values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value, and every password in a URL, masked.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut masked = Cow::Borrowed(text);
        for value in &self.values {
            if masked.contains(value.as_str()) {
                masked = Cow::Owned(masked.replace(value.as_str(), MASK));
            }
        }
        masked
    }

    /// Like [`Secrets::mask`], with URL passwords masked too.
    pub fn mask_all(&self, text: &str) -> String {
        mask_url_password(&self.mask(text))
    }

    /// Every string inside `value` masked (an envelope, a JSON answer).
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => {
                if let Cow::Owned(masked) = self.mask(text) {
                    *text = masked;
                }
            }
            serde_json::Value::Array(values) => {
                values.iter_mut().for_each(|value| self.mask_json(value));
            }
            serde_json::Value::Object(map) => {
                map.values_mut().for_each(|value| self.mask_json(value));
            }
            _ => {}
        }
    }
}

/// The secrets log lines are masked with: set once the configuration is loaded (see
/// [`MaskingWriter`]).
static LOGGED: RwLock<Secrets> = RwLock::new(Secrets { values: Vec::new() });

/// Masks these secrets in every log line from now on.
pub fn mask_in_logs(secrets: &Secrets) {
    *LOGGED
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = secrets.clone();
}

/// A log writer that masks secrets and URL passwords in what it is given. The log
/// formatter writes each event in one call, so a secret is never split between two.
pub struct MaskingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for MaskingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let secrets = LOGGED
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let text = String::from_utf8_lossy(buffer);
        let masked = secrets.mask_all(&text);
        self.0.write_all(masked.as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Masks every password in `text`: the `:password@` part of anything URL-like and
/// `password=…` parameters (query or keyword/value form). Never fails; meant for
/// strings of unknown shape, such as error messages that quote a connection string.
pub fn mask_url_password(text: &str) -> String {
    mask_password_parameters(&mask_user_information(text))
}

fn mask_user_information(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(separator) = rest.find("://") {
        let authority_start = separator + 3;
        masked.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let end = rest
            .find(|character: char| character.is_whitespace() || "?#\"'<>".contains(character))
            .unwrap_or(rest.len());
        let region = &rest[..end];
        // The `@` ends the user information; look past a `/` too, because a password
        // with an unencoded `/` must not leak either.
        let slash = region.find('/').unwrap_or(region.len());
        let at = region[..slash].rfind('@').or_else(|| region.rfind('@'));
        if let Some((colon, at)) = at.and_then(|at| region[..at].find(':').map(|colon| (colon, at)))
        {
            masked.push_str(&region[..=colon]);
            masked.push_str(MASK);
            rest = &rest[at..];
        }
    }
    masked.push_str(rest);
    masked
}

fn mask_password_parameters(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = find_ascii_case_insensitive(rest, "password") {
        let at_boundary = rest[..found]
            .chars()
            .next_back()
            .is_none_or(|before| before.is_whitespace() || "?&;".contains(before));
        let after_key = &rest[found + "password".len()..];
        let after_equals = after_key
            .trim_start()
            .strip_prefix('=')
            .map(str::trim_start)
            .filter(|_| at_boundary);
        let Some(value) = after_equals else {
            let next = found + "password".len();
            masked.push_str(&rest[..next]);
            rest = &rest[next..];
            continue;
        };
        let value_start = rest.len() - value.len();
        masked.push_str(&rest[..value_start]);
        let value_length = match value.strip_prefix('\'') {
            Some(quoted) => 1 + quoted_length(quoted),
            None => value
                .find(|character: char| character.is_whitespace() || "&#".contains(character))
                .unwrap_or(value.len()),
        };
        if value_length > 0 {
            let quoted = value.starts_with('\'');
            masked.push_str(if quoted { "'" } else { "" });
            masked.push_str(MASK);
            let closed = quoted && value_length >= 2 && value[..value_length].ends_with('\'');
            masked.push_str(if closed { "'" } else { "" });
        }
        rest = &value[value_length..];
    }
    masked.push_str(rest);
    masked
}

/// The length of a single-quoted value after its opening quote, closing quote included
/// (or to the end of the text when it is not closed).
fn quoted_length(quoted: &str) -> usize {
    let mut escaped = false;
    for (index, character) in quoted.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return index + 1,
            _ => {}
        }
    }
    quoted.len()
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_value_is_masked_wherever_it_appears() {
        let secrets = Secrets::new([
            "tok-123456".to_string(),
            "tok".to_string(),
            "s3cr3t-and-more".to_string(),
        ]);
        assert_eq!(
            secrets.mask("https://h/p?key=tok-123456&x=1 body tok-123456"),
            format!("https://h/p?key={MASK}&x=1 body {MASK}")
        );
        // Too short to mask everywhere: `tok` stays (a port or a flag would be mangled).
        assert_eq!(secrets.mask("tok"), "tok");
        // A secret containing another is masked whole.
        let nested = Secrets::new(["abcd".to_string(), "abcdefgh".to_string()]);
        assert_eq!(nested.mask("abcdefgh abcd"), format!("{MASK} {MASK}"));
        let mut json =
            serde_json::json!({"a": ["s3cr3t-and-more"], "b": {"c": "x s3cr3t-and-more"}, "n": 1});
        secrets.mask_json(&mut json);
        assert_eq!(
            json,
            serde_json::json!({"a": [MASK], "b": {"c": format!("x {MASK}")}, "n": 1})
        );
        assert_eq!(
            secrets.mask_all("postgres://u:pw@h/db?key=tok-123456"),
            format!("postgres://u:{MASK}@h/db?key={MASK}")
        );
    }

    #[test]
    fn debug_shows_no_value() {
        let secrets = Secrets::new(["debug-secret".to_string(), "another-one".to_string()]);
        assert_eq!(format!("{secrets:?}"), "Secrets(2 values)");
    }

    #[test]
    fn log_lines_are_masked() {
        mask_in_logs(&Secrets::new(["logged-secret".to_string()]));
        let mut written = Vec::new();
        let mut writer = MaskingWriter(&mut written);
        std::io::Write::write_all(&mut writer, b"error url=http://h/?t=logged-secret\n").unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            format!("error url=http://h/?t={MASK}\n")
        );
        mask_in_logs(&Secrets::default());
    }

    #[test]
    fn masks_passwords_in_any_text() {
        let cases = [
            ("postgres://u:secret@h/d", "postgres://u:••••@h/d"),
            ("postgres://u@h/d", "postgres://u@h/d"),
            ("postgres://h:5432/d", "postgres://h:5432/d"),
            ("postgres://u:se/cr@et@h/d", "postgres://u:••••@h/d"),
            (
                "failed: postgres://u:a@h/d and https://x:y@web/",
                "failed: postgres://u:••••@h/d and https://x:••••@web/",
            ),
            (
                "postgres://h/d?user=u&password=secret&x=1",
                "postgres://h/d?user=u&password=••••&x=1",
            ),
            (
                "host=h password='se cret' user=u",
                "host=h password='••••' user=u",
            ),
            (
                "host=h PASSWORD = secret user=u",
                "host=h PASSWORD = •••• user=u",
            ),
            ("password=", "password="),
            ("mypassword=visible", "mypassword=visible"),
            ("", ""),
            ("://@:", "://@:"),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_url_password(text), masked, "{text:?}");
        }
    }
}
