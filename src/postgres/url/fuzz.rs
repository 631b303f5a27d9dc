//! Fuzz target `database_url`: connection strings in both spellings. Besides never
//! panicking, a string that parses has a display form that hides the password and
//! parses back to the same connection (with the mask as its password).

use super::{DatabaseUrl, parse};
use crate::fuzz::{Target, fuzz, valid_corpus};
use crate::secret::MASK;

fn parse_and_show(input: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(input);
    let url = match parse(&text) {
        Ok(url) => url,
        Err(error) => {
            let _ = error.to_string();
            return Ok(());
        }
    };
    let masked = url.masked();
    let shown = format!("{masked} {url:?}");
    // A short password may be part of the host or the user name by chance.
    if let Some(password) = url.password.as_deref()
        && password.len() >= 4
        && shown.contains(password)
        && !masked_without(&url).contains(password)
    {
        return Err(format!("{shown:?} shows the password {password:?}"));
    }
    let reparsed = parse(&masked).map_err(|error| format!("{masked:?} does not parse: {error}"))?;
    let expected = DatabaseUrl {
        password: url.password.as_ref().map(|_| MASK.to_string()),
        ..url.clone()
    };
    if reparsed != expected {
        return Err(format!(
            "{text:?} displays as {masked:?}, which parses as {reparsed:?}, not {expected:?}"
        ));
    }
    Ok(())
}

/// The display form of `url` without a password at all: what is left may contain the
/// password's text by coincidence (a password equal to the user name).
fn masked_without(url: &DatabaseUrl) -> String {
    let without = DatabaseUrl {
        password: None,
        ..url.clone()
    };
    format!("{} {without:?}", without.masked())
}

#[test]
fn database_url() {
    fuzz(Target {
        name: "database_url",
        dictionary: &[
            b"postgres://",
            b"postgresql://",
            b"@",
            b":",
            b"/",
            b"?",
            b"&",
            b"=",
            b"[",
            b"]",
            b"%",
            b"%25",
            b"%2F",
            b"%zz",
            b"'",
            b"\\",
            b" ",
            b",",
            b"host=",
            b"port=",
            b"user=",
            b"password=",
            b"dbname=",
            b"sslmode=verify-full",
            b"sslrootcert=system",
            b"connect_timeout=",
            b"application_name=",
            b"options=",
            b"::1",
            b"65536",
            b"\xe2\x80\xa2",
        ],
        max_length: 4096,
        extra_corpus: &[],
        execute: &parse_and_show,
    });
}

#[test]
fn the_corpus_strings_parse() {
    for (path, input) in valid_corpus("database_url") {
        let text = String::from_utf8(input).expect("a text file");
        if let Err(error) = parse(&text) {
            panic!("{}: {error}", path.display());
        }
    }
}
