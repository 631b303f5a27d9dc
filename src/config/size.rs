//! Sizes in the configuration: `max_body`, `max_row`.

/// `512KB`, `1MB`, `2048` (bytes): units of 1,024.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let digits = text.trim_end_matches(|character: char| character.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let multiplier = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" => 1024,
        "MB" | "MIB" => 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size {text:?}: expected e.g. \"512KB\" or \"1MB\""
            ));
        }
    };
    match digits.parse::<usize>() {
        Ok(number) if number > 0 => number
            .checked_mul(multiplier)
            .ok_or_else(|| format!("size {text:?} is too large")),
        _ => Err(format!(
            "invalid size {text:?}: expected e.g. \"512KB\" or \"1MB\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MB"), Ok(1024 * 1024));
        assert_eq!(parse_size("512KB"), Ok(512 * 1024));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("0MB").is_err());
        assert!(parse_size("1GB").is_err());
        assert!(parse_size("big").is_err());
    }
}
