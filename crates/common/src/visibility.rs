//! Who may see a post: the one copy of the rule. The post service applies it to what the profile
//! service tells it; the engagement service's visibility cache to the relationships it keeps
//! from the profile service's events.

/// Who may see a post, numbered as in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public = 1,
    Connections = 2,
}

impl Visibility {
    pub const ALL: [Self; 2] = [Self::Public, Self::Connections];

    pub fn from_i64(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Public),
            2 => Some(Self::Connections),
            _ => None,
        }
    }

    pub fn as_i64(self) -> i64 {
        self as i64
    }
}

/// How a viewer relates to another member, as the profile service tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relation {
    /// The two are connected.
    pub connected: bool,
    /// One of the two blocked the other.
    pub blocked: bool,
}

/// Whether `viewer_id` may see a post by `author_id` with `visibility`, given how the viewer
/// relates to the author. Authors always see their own posts; a block either way hides
/// everything, even public posts; connections-only posts need a connection.
pub fn is_visible(
    author_id: &str,
    viewer_id: &str,
    visibility: Visibility,
    relation: Relation,
) -> bool {
    author_id == viewer_id || is_visible_to_another(visibility, relation)
}

/// [`is_visible`] for a viewer known not to be the author (a reader that compares members by
/// key rather than by id).
pub fn is_visible_to_another(visibility: Visibility, relation: Relation) -> bool {
    if relation.blocked {
        return false;
    }
    match visibility {
        Visibility::Public => true,
        Visibility::Connections => relation.connected,
    }
}
