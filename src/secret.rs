//! Masking: how secrets are shown in the history, the pages, the API and the logs.

/// What a password or other secret is shown as.
pub const MASK: &str = "••••";

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
