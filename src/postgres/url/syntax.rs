//! The two spellings of a connection string: a `postgres://` URL and libpq's
//! `key=value` pairs.

use super::DatabaseUrlError;
use super::parameters::Parameters;

/// The scheme of something that looks like another kind of URL (`mysql://…`).
pub(super) fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut characters = scheme.chars();
    let is_scheme = characters.next()?.is_ascii_alphabetic()
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    is_scheme.then_some(scheme)
}

/// `[user[:password]@][host][:port][/dbname][?key=value&…]`, after the scheme.
pub(super) fn parse_url(rest: &str, parameters: &mut Parameters) -> Result<(), DatabaseUrlError> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = location.split_once('/').unwrap_or((location, ""));
    let host_and_port = match authority.rsplit_once('@') {
        Some((user_information, host_and_port)) => {
            let (user, password) = match user_information.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (user_information, None),
            };
            parameters.user = Some(percent_decode(user, "user name")?);
            if let Some(password) = password {
                parameters.password = Some(percent_decode(password, "password")?);
            }
            host_and_port
        }
        None => authority,
    };
    if host_and_port.contains(',') {
        return Err(DatabaseUrlError::MultipleHosts);
    }
    let (host, port) = match host_and_port.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or(DatabaseUrlError::Ipv6)?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or(DatabaseUrlError::Port)?),
            };
            (percent_decode(address, "host")?, port)
        }
        None => match host_and_port.rsplit_once(':') {
            Some((host, port)) => (percent_decode(host, "host")?, Some(port)),
            None => (percent_decode(host_and_port, "host")?, None),
        },
    };
    parameters.host = Some(host);
    parameters.port = port.map(str::to_string);
    if !path.is_empty() {
        parameters.dbname = Some(percent_decode(path, "database name")?);
    }
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(DatabaseUrlError::MissingEquals)?;
        let key = percent_decode(key, "parameters")?;
        let value = percent_decode(value, "parameters")?;
        parameters.apply(&key, value)?;
    }
    Ok(())
}

/// `key=value` pairs separated by white space; values may be single-quoted, and a
/// backslash escapes the next character, as in libpq.
pub(super) fn parse_keyword_value(
    text: &str,
    parameters: &mut Parameters,
) -> Result<(), DatabaseUrlError> {
    let mut characters = text.chars().peekable();
    loop {
        skip_white_space(&mut characters);
        if characters.peek().is_none() {
            return Ok(());
        }
        let mut key = String::new();
        while let Some(character) =
            characters.next_if(|character| *character != '=' && !character.is_whitespace())
        {
            key.push(character);
        }
        skip_white_space(&mut characters);
        if characters.next() != Some('=') {
            return Err(DatabaseUrlError::MissingEquals);
        }
        skip_white_space(&mut characters);
        let mut value = String::new();
        if characters.next_if_eq(&'\'').is_some() {
            loop {
                match characters.next() {
                    Some('\'') => break,
                    Some('\\') => match characters.next() {
                        Some(escaped) => value.push(escaped),
                        None => return Err(DatabaseUrlError::UnterminatedQuote(key)),
                    },
                    Some(character) => value.push(character),
                    None => return Err(DatabaseUrlError::UnterminatedQuote(key)),
                }
            }
        } else {
            while let Some(character) = characters.next_if(|character| !character.is_whitespace()) {
                if character == '\\' {
                    value.extend(characters.next());
                } else {
                    value.push(character);
                }
            }
        }
        parameters.apply(&key, value)?;
    }
}

fn skip_white_space(characters: &mut std::iter::Peekable<std::str::Chars>) {
    while characters
        .next_if(|character| character.is_whitespace())
        .is_some()
    {}
}

fn percent_decode(text: &str, part: &'static str) -> Result<String, DatabaseUrlError> {
    let error = || DatabaseUrlError::PercentEncoding(part);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let digits = bytes.get(index + 1..index + 3).ok_or_else(error)?;
            let value = |digit: u8| char::from(digit).to_digit(16);
            let (Some(high), Some(low)) = (value(digits[0]), value(digits[1])) else {
                return Err(error());
            };
            decoded.push(u8::try_from(high * 16 + low).map_err(|_| error())?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| error())
}
