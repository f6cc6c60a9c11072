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

/// A batch read's answer in request order: `found` keyed by `id_of`, one item per requested
/// id (a repeated id repeats its item). A missing id is NOT_FOUND naming it (`what` says what
/// it names), or, with `allow_missing`, left out. Items the caller may not see must already be
/// missing from `found`, so they answer exactly as missing ones do.
pub fn in_request_order<T: Clone>(
    ids: &[String],
    found: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    allow_missing: bool,
    what: &str,
) -> Result<Vec<T>, tonic::Status> {
    let found: std::collections::HashMap<&str, &T> = found.iter().map(|t| (id_of(t), t)).collect();
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        match found.get(id.as_str()) {
            Some(item) => items.push((*item).clone()),
            None if allow_missing => {}
            None => return Err(tonic::Status::not_found(format!("{what} {id} not found"))),
        }
    }
    Ok(items)
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

    #[test]
    fn batch_answers_keep_request_order_repeat_and_name_the_missing() {
        let found = vec![("b", 2), ("a", 1)];
        let ids: Vec<String> = ["a", "b", "a"].map(String::from).to_vec();
        let items = in_request_order(&ids, found.clone(), |t| t.0, false, "post").unwrap();
        assert_eq!(items, [("a", 1), ("b", 2), ("a", 1)]);
        let ids: Vec<String> = ["a", "zz", "b"].map(String::from).to_vec();
        let err = in_request_order(&ids, found.clone(), |t| t.0, false, "post").unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(err.message(), "post zz not found");
        let items = in_request_order(&ids, found, |t| t.0, true, "post").unwrap();
        assert_eq!(items, [("a", 1), ("b", 2)]);
    }
}
