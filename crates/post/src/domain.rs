//! Post-service types and rules: the post text and what is extracted from it (hashtags and
//! mentions), who may see a post, the query for recent posts, and every limit in one place.

use pronet_common::input::{is_hashtag_char, parse_hashtag};
// The visibility rule lives once, in `common`: the engagement service's cache applies it too.
pub use pronet_common::visibility::{is_visible, Relation, Visibility};

/// Every limit of the post service.
pub mod limits {
    use pronet_common::input::TextRule;

    pub const POST_TEXT: TextRule = TextRule::multi_line(1, 3000);
    /// A reshare's commentary may be empty.
    pub const RESHARE_TEXT: TextRule = TextRule::multi_line(0, 3000);
    /// Hashtags kept per post; later ones stay in the text but are not indexed.
    pub const MAX_HASHTAGS_PER_POST: usize = 30;
    /// Longest hashtag, in characters, without the '#'.
    pub const HASHTAG_MAX: usize = pronet_common::input::MAX_HASHTAG_CHARS;
    /// A mention's handle: the profile service's handle rule.
    pub const MENTION_MIN: usize = 3;
    pub const MENTION_MAX: usize = 30;
    pub const MAX_BATCH_GET: usize = 1000;
    /// Posts one `ImportPosts` call may carry.
    pub const MAX_IMPORT_POSTS: usize = 1000;
    pub const DEFAULT_PAGE_SIZE: usize = 20;
    pub const MAX_PAGE_SIZE: usize = 100;
    pub const MAX_RECENT_AUTHORS: usize = 5000;
    pub const MAX_RECENT_HASHTAGS: usize = 200;
    pub const DEFAULT_RECENT_POSTS: usize = 1000;
    pub const MAX_RECENT_POSTS: usize = 5000;
    /// Handles one `LookupHandles` call may name.
    pub const MAX_LOOKUP_HANDLES: usize = 100;
    /// A hashtag listing reads at most this many pages of the index to fill one page with
    /// posts the viewer may see; then it returns what it has, with a token to go on.
    pub const MAX_HASHTAG_SCANS: usize = 10;
    pub const DEFAULT_TRENDING_WINDOW_MICROS: i64 = 7 * DAY_MICROS;
    pub const MAX_TRENDING_WINDOW_MICROS: i64 = 90 * DAY_MICROS;
    pub const DEFAULT_TRENDING: usize = 20;
    pub const MAX_TRENDING: usize = 100;
    /// Hashtags (most posts first) whose engagement is counted.
    pub const MAX_TRENDING_ENGAGED_HASHTAGS: usize = 100;
    /// Posts per window whose engagement is counted, newest first.
    pub const MAX_TRENDING_ENGAGED_POSTS: usize = 5000;
    /// Posts per `BatchGetPostStats` call.
    pub const STATS_CHUNK: usize = 1000;
    const DAY_MICROS: i64 = 86_400_000_000;
}

/// A post's text: 1..3000 characters, no control characters but line breaks and tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostText(String);

impl PostText {
    pub fn parse(raw: &str) -> Result<Self, String> {
        limits::POST_TEXT.parse(raw).map(Self)
    }

    /// A reshare's commentary: as a post's text, but it may be empty.
    pub fn parse_reshare(raw: &str) -> Result<Self, String> {
        limits::RESHARE_TEXT.parse(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The hashtags of the text, see [`extract_hashtags`].
    pub fn hashtags(&self) -> Vec<String> {
        extract_hashtags(&self.0)
    }

    /// The mentioned handles of the text, see [`extract_mentions`].
    pub fn mentions(&self) -> Vec<String> {
        extract_mentions(&self.0)
    }
}

/// Whether a '#' right after `c` may start a hashtag. Not after a word character ("C#", "a#b")
/// nor after '&', which keeps HTML character references such as "&#39;" out.
fn may_precede_hashtag(c: char) -> bool {
    !(c.is_alphanumeric() || c == '_' || c == '&')
}

/// Hashtags of a text: '#' at the start or after a non-word character, then a run of letters,
/// digits and '_'. Each is normalized as clients' hashtags are (lowercase, without '#'); runs
/// that are not valid hashtags (no letter, longer than 100 characters) are skipped. Duplicates
/// are dropped, keeping the order of first appearance, and at most 30 are kept.
pub fn extract_hashtags(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tags: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < chars.len() && tags.len() < limits::MAX_HASHTAGS_PER_POST {
        let c = chars[i];
        if c != '#' || !prev.is_none_or(may_precede_hashtag) {
            prev = Some(c);
            i += 1;
            continue;
        }
        let run: Vec<char> = chars[i + 1..]
            .iter()
            .copied()
            .take_while(|&c| is_hashtag_char(c))
            .collect();
        if run.len() <= limits::HASHTAG_MAX {
            let run: String = run.iter().collect();
            if let Ok(tag) = parse_hashtag(&run) {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        // Continue after the run: its last character (or the '#') precedes what follows.
        prev = Some(run.last().copied().unwrap_or(c));
        i += 1 + run.len();
    }
    tags
}

fn is_handle_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Handles mentioned in a text: '@' at the start or after a non-alphanumeric character (so the
/// '@' of an e-mail address does not count), then 3..30 characters of `A-Za-z0-9_-`. Lowercase,
/// duplicates dropped, in order of first appearance. Runs too short or too long are skipped.
pub fn extract_mentions(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut handles: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '@' || prev.is_some_and(char::is_alphanumeric) {
            prev = Some(c);
            i += 1;
            continue;
        }
        let run: Vec<char> = chars[i + 1..]
            .iter()
            .copied()
            .take_while(|&c| is_handle_char(c))
            .collect();
        if (limits::MENTION_MIN..=limits::MENTION_MAX).contains(&run.len()) {
            let handle: String = run.iter().collect::<String>().to_ascii_lowercase();
            if !handles.contains(&handle) {
                handles.push(handle);
            }
        }
        prev = Some(run.last().copied().unwrap_or(c));
        i += 1 + run.len();
    }
    handles
}

/// A mention that resolved to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// The handle as the member spells it.
    pub handle: String,
    pub member_id: String,
}

/// Keeps the mentions that resolved: `owners` maps lowercase handles to their members. Returns
/// the resolved lowercase handles and the mentions, both in the order of `handles`.
pub fn resolve_mentions(
    handles: &[String],
    owners: &std::collections::HashMap<String, Mention>,
) -> (Vec<String>, Vec<Mention>) {
    handles
        .iter()
        .filter_map(|h| owners.get(h).map(|m| (h.clone(), m.clone())))
        .unzip()
}

/// A stored post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRecord {
    pub id: String,
    pub author_id: String,
    pub text: String,
    pub visibility: Visibility,
    /// Lowercase, without '#', in order of first appearance.
    pub hashtags: Vec<String>,
    /// Lowercase handles, in order of first appearance.
    pub mentions: Vec<String>,
    pub create_time: i64,
    /// When the text was last edited; `None` if never.
    pub update_time: Option<i64>,
    /// For a reshare: the root original.
    pub reshare_of: Option<String>,
    /// The mentions that resolved to members, in order of first appearance.
    pub mentioned_members: Vec<Mention>,
}

impl PostRecord {
    /// A new post, with the hashtags and mentions of its text extracted (mentions not yet
    /// resolved to members).
    pub fn new(
        id: String,
        author_id: String,
        text: PostText,
        visibility: Visibility,
        create_time: i64,
    ) -> Self {
        Self {
            id,
            author_id,
            hashtags: text.hashtags(),
            mentions: text.mentions(),
            text: text.into_string(),
            visibility,
            create_time,
            update_time: None,
            reshare_of: None,
            mentioned_members: Vec::new(),
        }
    }

    /// Whether the text was edited after publishing.
    pub fn edited(&self) -> bool {
        self.update_time.is_some()
    }
}

/// A new text for a post, with what was extracted from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostEdit {
    pub text: String,
    pub hashtags: Vec<String>,
    /// Resolved handles only, lowercase.
    pub mentions: Vec<String>,
    pub mentioned_members: Vec<Mention>,
    pub update_time: i64,
}

/// Creation times an author listing keeps: `start <= t < end`, each bound optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeRange {
    /// The range as bounds for SQL: `start <= t < end`.
    pub fn bounds(self) -> (i64, i64) {
        (self.start.unwrap_or(i64::MIN), self.end.unwrap_or(i64::MAX))
    }
}

/// A hashtag's activity in the ranked window and the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendingHashtag {
    pub hashtag: String,
    pub posts: i64,
    pub previous_posts: i64,
    pub engagement: i64,
    pub previous_engagement: i64,
    pub growth: f64,
}

impl TrendingHashtag {
    pub fn new(
        hashtag: String,
        (posts, engagement): (i64, i64),
        (previous_posts, previous_engagement): (i64, i64),
    ) -> Self {
        // +1 on both sides: a new hashtag grows from 1, never divides by zero.
        let growth =
            (posts + engagement + 1) as f64 / (previous_posts + previous_engagement + 1) as f64;
        Self {
            hashtag,
            posts,
            previous_posts,
            engagement,
            previous_engagement,
            growth,
        }
    }
}

/// Orders trending hashtags: growth, then posts (both descending), then hashtag.
pub fn rank_trending(tags: &mut [TrendingHashtag]) {
    tags.sort_by(|a, b| {
        b.growth
            .total_cmp(&a.growth)
            .then(b.posts.cmp(&a.posts))
            .then_with(|| a.hashtag.cmp(&b.hashtag))
    });
}

pub use pronet_common::idempotency::IdempotencyKey;

/// Position after the last post of a newest-first page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time: i64,
    pub id: String,
}

/// Recent posts by some authors or carrying some hashtags: feed candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentPostsQuery {
    /// Distinct, valid author ids.
    pub author_ids: Vec<String>,
    /// Distinct, normalized hashtags.
    pub hashtags: Vec<String>,
    /// Only posts created at or after this time (microseconds).
    pub since: i64,
    /// At most this many posts overall.
    pub max_posts: usize,
    /// At most this many posts of each author in `author_ids`; `None` is no limit.
    pub max_posts_per_author: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<String> {
        extract_hashtags(text)
    }

    fn mentions(text: &str) -> Vec<String> {
        extract_mentions(text)
    }

    #[test]
    fn hashtags_are_lowercase_without_hash() {
        assert_eq!(tags("#MentalHealth matters"), ["mentalhealth"]);
        assert_eq!(tags("#MentalHealth"), tags("#mentalhealth"));
        assert_eq!(tags("Learning #Rust_Lang, #go."), ["rust_lang", "go"]);
        assert_eq!(tags("(#rust)\n#wasm"), ["rust", "wasm"]);
    }

    #[test]
    fn hashtags_need_a_letter() {
        assert!(tags("#2024").is_empty());
        assert_eq!(tags("#2024 was #Year2024"), ["year2024"]);
        assert!(tags("# alone").is_empty());
        assert!(tags("#").is_empty());
    }

    #[test]
    fn unicode_hashtags_are_kept() {
        assert_eq!(tags("Viel #Überfluss heute"), ["überfluss"]);
        assert_eq!(tags("#日本語 #Ελλάδα"), ["日本語", "ελλάδα"]);
    }

    #[test]
    fn hash_inside_a_word_is_not_a_hashtag() {
        assert!(tags("I write C# and F#").is_empty());
        assert!(tags("a#b").is_empty());
        assert!(tags("it&#39;s").is_empty());
        assert_eq!(tags("#one#two"), ["one"]);
        assert_eq!(tags("##double"), ["double"]);
    }

    #[test]
    fn hashtags_are_deduplicated_in_order_of_first_appearance() {
        assert_eq!(tags("#b #a #B #c #a"), ["b", "a", "c"]);
    }

    #[test]
    fn at_most_thirty_hashtags_are_kept() {
        let text: String = (0..40).map(|i| format!("#tag{i} ")).collect();
        let found = tags(&text);
        assert_eq!(found.len(), limits::MAX_HASHTAGS_PER_POST);
        assert_eq!(found[0], "tag0");
        assert_eq!(found[29], "tag29");
    }

    #[test]
    fn overlong_hashtags_are_skipped() {
        let long = format!("#{} #short", "a".repeat(101));
        assert_eq!(tags(&long), ["short"]);
        let max = format!("#{}", "a".repeat(100));
        assert_eq!(tags(&max), ["a".repeat(100)]);
    }

    #[test]
    fn mentions_are_lowercase_handles() {
        assert_eq!(mentions("Thanks @Ada_Lovelace!"), ["ada_lovelace"]);
        assert_eq!(mentions("@bob-smith, @carol."), ["bob-smith", "carol"]);
        assert_eq!(mentions("cc @Ada @ada @bob @ADA"), ["ada", "bob"]);
    }

    #[test]
    fn email_addresses_are_not_mentions() {
        assert!(mentions("write to ada@example.com").is_empty());
        assert!(mentions("über@example.com").is_empty());
        assert_eq!(mentions("(@ada) ada@example.com"), ["ada"]);
    }

    #[test]
    fn mentions_must_be_three_to_thirty_characters() {
        assert!(mentions("@ab").is_empty());
        assert!(mentions("@").is_empty());
        assert_eq!(mentions("@abc"), ["abc"]);
        assert_eq!(mentions(&format!("@{}", "a".repeat(30))), ["a".repeat(30)]);
        assert!(mentions(&format!("@{}", "a".repeat(31))).is_empty());
    }

    #[test]
    fn post_text_is_one_to_three_thousand_characters() {
        assert!(PostText::parse("").is_err());
        assert!(PostText::parse(" \n\t").is_err());
        assert!(PostText::parse("bell\u{7}").is_err());
        assert_eq!(PostText::parse("hi\nthere").unwrap().as_str(), "hi\nthere");
        assert!(PostText::parse(&"ä".repeat(3000)).is_ok());
        assert!(PostText::parse(&"ä".repeat(3001)).is_err());
    }

    #[test]
    fn a_new_post_carries_its_extractions() {
        let text = PostText::parse("Hello @Ada, #Rust is fun #rust").unwrap();
        let post = PostRecord::new("p".into(), "a".into(), text, Visibility::Public, 7);
        assert_eq!(post.hashtags, ["rust"]);
        assert_eq!(post.mentions, ["ada"]);
        assert_eq!(post.text, "Hello @Ada, #Rust is fun #rust");
    }

    #[test]
    fn reshare_commentary_may_be_empty_but_not_too_long() {
        assert_eq!(PostText::parse_reshare("").unwrap().as_str(), "");
        assert!(PostText::parse_reshare(&"a".repeat(3001)).is_err());
        assert!(PostText::parse_reshare("bell\u{7}").is_err());
    }

    #[test]
    fn only_resolved_mentions_are_kept_in_order() {
        let owners = std::collections::HashMap::from([
            (
                "bob".to_string(),
                Mention {
                    handle: "Bob".into(),
                    member_id: "m-bob".into(),
                },
            ),
            (
                "ada".to_string(),
                Mention {
                    handle: "ada".into(),
                    member_id: "m-ada".into(),
                },
            ),
        ]);
        let handles = ["ada", "ghost", "bob"].map(String::from);
        let (mentions, members) = resolve_mentions(&handles, &owners);
        assert_eq!(mentions, ["ada", "bob"]);
        assert_eq!(members[1].handle, "Bob");
        assert_eq!(members[1].member_id, "m-bob");
    }

    #[test]
    fn trending_growth_and_order() {
        let t = TrendingHashtag::new("a".into(), (3, 6), (0, 0));
        assert_eq!(t.growth, 10.0);
        let mut tags = vec![
            TrendingHashtag::new("c".into(), (1, 0), (1, 0)),
            TrendingHashtag::new("b".into(), (2, 0), (2, 0)),
            TrendingHashtag::new("a".into(), (1, 0), (1, 0)),
            TrendingHashtag::new("z".into(), (4, 0), (0, 0)),
        ];
        rank_trending(&mut tags);
        let order: Vec<&str> = tags.iter().map(|t| t.hashtag.as_str()).collect();
        assert_eq!(order, ["z", "b", "a", "c"]);
    }

    #[test]
    fn visibility_numbers_match_the_proto() {
        assert_eq!(Visibility::from_i64(1), Some(Visibility::Public));
        assert_eq!(Visibility::from_i64(2), Some(Visibility::Connections));
        assert_eq!(Visibility::from_i64(0), None);
        assert_eq!(Visibility::Connections.as_i64(), 2);
    }

    const STRANGER: Relation = Relation {
        connected: false,
        blocked: false,
    };
    const CONNECTED: Relation = Relation {
        connected: true,
        blocked: false,
    };

    #[test]
    fn authors_see_their_own_posts_whatever_the_relation() {
        for visibility in Visibility::ALL {
            for blocked in [false, true] {
                let relation = Relation {
                    connected: false,
                    blocked,
                };
                assert!(is_visible("ada", "ada", visibility, relation));
            }
        }
    }

    #[test]
    fn public_posts_are_visible_to_strangers_and_connections() {
        assert!(is_visible("ada", "bob", Visibility::Public, STRANGER));
        assert!(is_visible("ada", "bob", Visibility::Public, CONNECTED));
    }

    #[test]
    fn connections_only_posts_need_a_connection() {
        assert!(!is_visible("ada", "bob", Visibility::Connections, STRANGER));
        assert!(is_visible("ada", "bob", Visibility::Connections, CONNECTED));
    }

    #[test]
    fn a_block_hides_every_post_of_the_other_member() {
        for visibility in Visibility::ALL {
            for connected in [false, true] {
                let relation = Relation {
                    connected,
                    blocked: true,
                };
                assert!(!is_visible("ada", "bob", visibility, relation));
            }
        }
    }
}
