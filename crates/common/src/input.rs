//! Rules for free text shared by every service: length in characters (not bytes) and no control
//! characters beyond the line breaks and tabs a multi-line text may carry.

/// How a text field is checked.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    pub min_chars: usize,
    pub max_chars: usize,
    /// Whether `\n`, `\r` and `\t` are allowed.
    pub multiline: bool,
}

impl TextRule {
    pub const fn single_line(min_chars: usize, max_chars: usize) -> Self {
        Self {
            min_chars,
            max_chars,
            multiline: false,
        }
    }

    pub const fn multi_line(min_chars: usize, max_chars: usize) -> Self {
        Self {
            min_chars,
            max_chars,
            multiline: true,
        }
    }

    /// Checks `raw`, normalized to Unicode NFC (so visually equal texts are stored equal);
    /// single-line texts are trimmed first. Otherwise the text is kept as sent.
    pub fn parse(&self, raw: &str) -> Result<String, String> {
        use unicode_normalization::UnicodeNormalization;
        let normalized: String = raw.nfc().collect();
        let text = if self.multiline {
            normalized.as_str()
        } else {
            normalized.trim()
        };
        let chars = text.chars().count();
        if chars < self.min_chars {
            return Err(if self.min_chars == 1 {
                "must not be empty".into()
            } else {
                format!("must be at least {} characters", self.min_chars)
            });
        }
        if chars > self.max_chars {
            return Err(format!(
                "must be at most {} characters, got {chars}",
                self.max_chars
            ));
        }
        let allowed = |c: char| self.multiline && matches!(c, '\n' | '\r' | '\t');
        if text.chars().any(|c| c.is_control() && !allowed(c)) {
            return Err("must not contain control characters".into());
        }
        if self.multiline && text.trim().is_empty() && self.min_chars > 0 {
            return Err("must not be blank".into());
        }
        Ok(text.to_owned())
    }
}

/// Checks the number of items in a repeated field.
pub fn check_count(len: usize, max: usize) -> Result<(), String> {
    if len > max {
        Err(format!("must have at most {max} items, got {len}"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        let rule = TextRule::single_line(1, 3);
        assert_eq!(rule.parse("äöü").unwrap(), "äöü");
        assert!(rule.parse("äöüß").is_err());
    }

    #[test]
    fn trims_single_line_and_refuses_empty() {
        let rule = TextRule::single_line(1, 10);
        assert_eq!(rule.parse("  ada ").unwrap(), "ada");
        assert!(rule.parse("   ").is_err());
        assert!(rule.parse("a\nb").is_err());
    }

    #[test]
    fn multi_line_allows_breaks_but_not_other_controls() {
        let rule = TextRule::multi_line(1, 100);
        assert!(rule.parse("line one\nline two\t!").is_ok());
        assert!(rule.parse("bell\u{7}").is_err());
        assert!(rule.parse(" \n ").is_err());
    }

    #[test]
    fn normalizes_to_nfc() {
        // "e" + combining acute accent becomes the single precomposed "é".
        let parsed = TextRule::single_line(1, 10)
            .parse("caf\u{65}\u{301}")
            .unwrap();
        assert_eq!(parsed, "caf\u{e9}");
        assert_eq!(parsed.chars().count(), 4);
    }

    #[test]
    fn optional_text_may_be_empty() {
        assert_eq!(TextRule::single_line(0, 5).parse("").unwrap(), "");
    }
}

/// Longest hashtag, in characters, without the '#'.
pub const MAX_HASHTAG_CHARS: usize = 100;

/// Whether `c` may appear in a hashtag (after the '#').
pub fn is_hashtag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Normalizes a hashtag given by a client: an optional leading '#', then 1..100 letters, digits
/// or '_'; the result is lowercase without '#', the same form posts' hashtags are extracted in.
pub fn parse_hashtag(raw: &str) -> Result<String, String> {
    use unicode_normalization::UnicodeNormalization;
    // NFC first, so a tag typed with combining accents is the same tag as a precomposed one.
    let normalized: String = raw.nfc().collect();
    let tag = normalized.trim();
    let tag = tag.strip_prefix('#').unwrap_or(tag);
    if tag.is_empty() {
        return Err("must not be empty".into());
    }
    if tag.chars().count() > MAX_HASHTAG_CHARS {
        return Err(format!("must be at most {MAX_HASHTAG_CHARS} characters"));
    }
    if !tag.chars().all(is_hashtag_char) {
        return Err("must contain only letters, digits and '_'".into());
    }
    if !tag.chars().any(char::is_alphabetic) {
        return Err("must contain a letter".into());
    }
    Ok(tag.to_lowercase())
}

#[cfg(test)]
mod hashtag_tests {
    use super::*;

    #[test]
    fn normalizes_hashtags() {
        assert_eq!(parse_hashtag("#MentalHealth").unwrap(), "mentalhealth");
        assert_eq!(parse_hashtag("rust_lang").unwrap(), "rust_lang");
        assert_eq!(parse_hashtag("#Überfluss").unwrap(), "überfluss");
        assert!(parse_hashtag("#").is_err());
        assert!(parse_hashtag("#2024").is_err());
        assert!(parse_hashtag("two words").is_err());
        assert_eq!(
            parse_hashtag("#Cafe\u{301}").unwrap(),
            parse_hashtag("#caf\u{e9}").unwrap()
        );
    }
}
