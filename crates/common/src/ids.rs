//! Opaque ids: time-ordered UUIDv7 in simple (32 hex digits) form, and the rule every id field
//! of a request is checked against.

/// Longest id accepted from a client.
pub const MAX_ID_LEN: usize = 64;

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Checks a client-supplied id: present, at most 64 characters of `[A-Za-z0-9_-]`.
pub fn parse_id(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.len() > MAX_ID_LEN {
        return Err(format!("must be at most {MAX_ID_LEN} characters"));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("must contain only letters, digits, '-' and '_'".into());
    }
    Ok(raw.to_owned())
}

/// `items` without repeats, each kept at its first place.
pub fn distinct(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_valid_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert_eq!(parse_id(&a).unwrap(), a);
        assert!(a < b, "uuid v7 ids sort by creation");
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(parse_id("").is_err());
        assert!(parse_id(&"a".repeat(65)).is_err());
        assert!(parse_id("a b").is_err());
        assert!(parse_id("x'; drop").is_err());
    }
}
