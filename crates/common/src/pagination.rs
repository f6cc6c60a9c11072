//! AIP-158 pagination: page sizes (0 = default, capped, negative refused) and opaque page
//! tokens that carry a cursor of a few string parts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Turns a request's `page_size` into a row count.
pub fn page_size(raw: i32, default: usize, max: usize) -> Result<usize, String> {
    match raw {
        n if n < 0 => Err("must not be negative".into()),
        0 => Ok(default),
        n => Ok((n as usize).min(max)),
    }
}

const SEPARATOR: char = '\u{1f}';

/// Encodes cursor parts into an opaque token. Parts must not contain U+001F.
pub fn encode_token(parts: &[&str]) -> String {
    let mut joined = String::from("v1");
    for part in parts {
        joined.push(SEPARATOR);
        joined.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(joined)
}

/// Decodes a token made by [`encode_token`] with `arity` parts.
pub fn decode_token(token: &str, arity: usize) -> Result<Vec<String>, String> {
    const INVALID: &str = "is not a page token from this service";
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| INVALID)?;
    let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
    let mut parts = text.split(SEPARATOR);
    if parts.next() != Some("v1") {
        return Err(INVALID.into());
    }
    let parts: Vec<String> = parts.map(str::to_owned).collect();
    if parts.len() != arity {
        return Err(INVALID.into());
    }
    Ok(parts)
}

/// A `(time, id)` keyset cursor, the usual position in a newest-first list.
pub fn encode_time_cursor(time_micros: i64, id: &str) -> String {
    encode_token(&[&time_micros.to_string(), id])
}

/// Decodes a [`encode_time_cursor`] token; an empty token is the first page.
pub fn decode_time_cursor(token: &str) -> Result<Option<(i64, String)>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let parts = decode_token(token, 2)?;
    let time = parts[0]
        .parse()
        .map_err(|_| "is not a page token from this service".to_string())?;
    Ok(Some((time, parts[1].clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_caps_and_refuses_negative() {
        assert_eq!(page_size(0, 20, 100).unwrap(), 20);
        assert_eq!(page_size(7, 20, 100).unwrap(), 7);
        assert_eq!(page_size(5000, 20, 100).unwrap(), 100);
        assert!(page_size(-1, 20, 100).is_err());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = encode_time_cursor(1_700_000_000_000_000, "abc");
        assert_eq!(
            decode_time_cursor(&token).unwrap(),
            Some((1_700_000_000_000_000, "abc".to_string()))
        );
        assert_eq!(decode_time_cursor("").unwrap(), None);
        assert!(decode_time_cursor("not a token!").is_err());
        assert!(decode_time_cursor(&encode_token(&["x", "y", "z"])).is_err());
        assert!(decode_time_cursor(&encode_token(&["nan", "y"])).is_err());
    }
}
