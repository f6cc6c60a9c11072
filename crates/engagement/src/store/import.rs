//! What both backends share of an engagement import: folding the batch into the rows to write
//! and adding up the count changes per post, so a backend only reads what is stored, writes
//! the rows and applies one counts upsert per post.

use std::collections::{BTreeMap, HashMap, HashSet};

use pronet_common::outbox::Payload;

use super::{count_column, COMMENT_COUNT, IMPRESSION_COUNT, SHARE_COUNT, UNIQUE_VIEWER_COUNT};
use crate::domain::{
    utc_day, CommentRecord, ImpressionRecord, ReactionRecord, ReactionType, ShareRecord,
};
use crate::events;

/// The counted columns of `post_stats`, in the order [`StatsDeltas`] keeps them.
pub(super) const STATS_COLUMNS: [&str; 10] = [
    "like_count",
    "celebrate_count",
    "support_count",
    "love_count",
    "insightful_count",
    "funny_count",
    COMMENT_COUNT,
    SHARE_COUNT,
    IMPRESSION_COUNT,
    UNIQUE_VIEWER_COUNT,
];

/// One member's reactions to one post in a batch, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FoldedReaction {
    pub post_id: String,
    pub member_id: String,
    pub types: Vec<ReactionType>,
    /// The earliest time among them: the reaction's create time when it is new.
    pub first_time: i64,
    /// The time of the last: the reaction's update time.
    pub last_time: i64,
}

impl FoldedReaction {
    /// The type the member ends with.
    pub fn final_type(&self) -> ReactionType {
        *self.types.last().expect("a folded reaction has a type")
    }

    /// Over the `stored` type, `(written, skipped)`: the last reaction replaces the earlier
    /// ones (as it would, sent one by one) and is written when it is new or changes the type;
    /// the earlier ones, and a last one equal to what is stored, are skipped. A retried import
    /// is thus skipped whole, and the counts end as the one-by-one writes leave them.
    pub fn outcome(&self, stored: Option<ReactionType>) -> (u64, u64) {
        let written = u64::from(stored != Some(self.final_type()));
        (written, self.types.len() as u64 - written)
    }
}

/// The reactions of a batch per (post, member), sorted by post then member (the order rows
/// are locked in).
pub(super) fn fold_reactions(reactions: &[ReactionRecord]) -> Vec<FoldedReaction> {
    let mut folded: BTreeMap<(&str, &str), FoldedReaction> = BTreeMap::new();
    for r in reactions {
        folded
            .entry((r.post_id.as_str(), r.member_id.as_str()))
            .and_modify(|f| {
                f.types.push(r.reaction_type);
                f.first_time = f.first_time.min(r.create_time);
                f.last_time = r.create_time;
            })
            .or_insert_with(|| FoldedReaction {
                post_id: r.post_id.clone(),
                member_id: r.member_id.clone(),
                types: vec![r.reaction_type],
                first_time: r.create_time,
                last_time: r.create_time,
            });
    }
    folded.into_values().collect()
}

/// Comments with distinct ids, the first of each kept, and how many repeats were dropped.
pub(super) fn distinct_comments(comments: Vec<CommentRecord>) -> (Vec<CommentRecord>, u64) {
    let total = comments.len();
    let mut seen = HashSet::with_capacity(total);
    let kept: Vec<CommentRecord> = comments
        .into_iter()
        .filter(|c| seen.insert(c.id.clone()))
        .collect();
    let dropped = (total - kept.len()) as u64;
    (kept, dropped)
}

/// Shares with distinct ids and distinct (post, member), the first of each kept, sorted by
/// post then member; and how many were dropped.
pub(super) fn distinct_shares(shares: Vec<ShareRecord>) -> (Vec<ShareRecord>, u64) {
    let total = shares.len();
    let mut ids = HashSet::with_capacity(total);
    let mut pairs = HashSet::with_capacity(total);
    let mut kept: Vec<ShareRecord> = shares
        .into_iter()
        .filter(|s| {
            pairs.insert((s.post_id.clone(), s.member_id.clone())) && ids.insert(s.id.clone())
        })
        .collect();
    kept.sort_by(|a, b| (&a.post_id, &a.member_id).cmp(&(&b.post_id, &b.member_id)));
    let dropped = (total - kept.len()) as u64;
    (kept, dropped)
}

/// An impression to store: one per (post, member, UTC day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DayImpression {
    pub post_id: String,
    pub member_id: String,
    pub day: i64,
    /// The earliest view of that day in the batch.
    pub time: i64,
}

/// Impressions per (post, member, day), sorted so, and how many repeats were dropped.
pub(super) fn fold_impressions(impressions: &[ImpressionRecord]) -> (Vec<DayImpression>, u64) {
    let mut folded: BTreeMap<(&str, &str, i64), i64> = BTreeMap::new();
    for i in impressions {
        let time = folded
            .entry((&i.post_id, &i.member_id, utc_day(i.view_time)))
            .or_insert(i.view_time);
        *time = (*time).min(i.view_time);
    }
    let dropped = (impressions.len() - folded.len()) as u64;
    let kept = folded
        .into_iter()
        .map(|((post_id, member_id, day), time)| DayImpression {
            post_id: post_id.to_owned(),
            member_id: member_id.to_owned(),
            day,
            time,
        })
        .collect();
    (kept, dropped)
}

/// The first view of each (post, member) among newly stored impressions, sorted by member then
/// post (the key of `post_viewers`).
pub(super) fn first_views(new: &[DayImpression]) -> Vec<(String, String, i64)> {
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for i in new {
        let time = first.entry((&i.member_id, &i.post_id)).or_insert(i.time);
        *time = (*time).min(i.time);
    }
    first
        .into_iter()
        .map(|((member, post), time)| (member.to_owned(), post.to_owned(), time))
        .collect()
}

/// Changes to the counts of each post, in [`STATS_COLUMNS`] order, sorted by post (the order
/// `post_stats` rows are locked in).
#[derive(Debug, Default)]
pub(super) struct StatsDeltas(BTreeMap<String, [i64; 10]>);

impl StatsDeltas {
    fn add(&mut self, post_id: &str, column: &str, delta: i64) {
        let index = STATS_COLUMNS
            .iter()
            .position(|c| *c == column)
            .expect("a post_stats column");
        if !self.0.contains_key(post_id) {
            self.0.insert(post_id.to_owned(), [0; 10]);
        }
        if let Some(row) = self.0.get_mut(post_id) {
            row[index] += delta;
        }
    }

    pub fn reaction(&mut self, post_id: &str, reaction_type: ReactionType, delta: i64) {
        self.add(post_id, count_column(reaction_type), delta);
    }

    /// The net change of a folded reaction over the `stored` type.
    pub fn reaction_change(&mut self, r: &FoldedReaction, stored: Option<ReactionType>) {
        let last = r.final_type();
        match stored {
            Some(old) if old == last => {}
            Some(old) => {
                self.reaction(&r.post_id, old, -1);
                self.reaction(&r.post_id, last, 1);
            }
            None => self.reaction(&r.post_id, last, 1),
        }
    }

    pub fn comment(&mut self, post_id: &str) {
        self.add(post_id, COMMENT_COUNT, 1);
    }

    pub fn share(&mut self, post_id: &str) {
        self.add(post_id, SHARE_COUNT, 1);
    }

    pub fn impression(&mut self, post_id: &str) {
        self.add(post_id, IMPRESSION_COUNT, 1);
    }

    pub fn viewer(&mut self, post_id: &str) {
        self.add(post_id, UNIQUE_VIEWER_COUNT, 1);
    }

    /// Posts whose counts change, with their changes; posts whose changes cancel out are left
    /// out.
    pub fn rows(&self) -> Vec<(&str, [i64; 10])> {
        self.0
            .iter()
            .filter(|(_, d)| d.iter().any(|n| *n != 0))
            .map(|(post, d)| (post.as_str(), *d))
            .collect()
    }
}

/// A reaction as stored before an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoredReaction {
    pub reaction_type: ReactionType,
    /// When the member first reacted.
    pub create_time: i64,
}

/// The reaction stored for each (post, member) named, keyed so.
pub(super) type StoredReactions = HashMap<(String, String), StoredReaction>;

/// The event of a folded reaction written over `stored`: the type it ends with, the stored one
/// it replaced, and the member's first reaction time (the stored one, else the batch's first).
pub(super) fn reaction_event(r: &FoldedReaction, stored: Option<StoredReaction>) -> Payload {
    let reaction = ReactionRecord {
        post_id: r.post_id.clone(),
        member_id: r.member_id.clone(),
        reaction_type: r.final_type(),
        create_time: stored.map_or(r.first_time, |s| s.create_time),
    };
    events::reaction_set(&reaction, stored.map(|s| s.reaction_type))
}

/// The `ImpressionsRecorded` events of an import, one per member and UTC day as
/// `RecordImpressions` writes them, by member then day: each lists the posts whose impression
/// of that day is `new`, and among them those in `first_views` (member, post) on their earliest
/// new day (the day their `post_viewers` row was written for). `new` is sorted by post, member,
/// day, as [`fold_impressions`] leaves it.
pub(super) fn impression_events(
    new: &[DayImpression],
    first_views: &HashSet<(String, String)>,
) -> Vec<Payload> {
    // Per (member, day): the posts, the first views among them, and when each post was shown.
    type Group = (Vec<String>, Vec<String>, Vec<i64>);
    let mut groups: BTreeMap<(&str, i64), Group> = BTreeMap::new();
    let mut previous: Option<(&str, &str)> = None;
    for i in new {
        // The first row of each (post, member) is its earliest day.
        let pair = (i.post_id.as_str(), i.member_id.as_str());
        let earliest = previous != Some(pair);
        previous = Some(pair);
        let (posts, firsts, times) = groups.entry((&i.member_id, i.day)).or_default();
        posts.push(i.post_id.clone());
        times.push(i.time);
        if earliest && first_views.contains(&(i.member_id.clone(), i.post_id.clone())) {
            firsts.push(i.post_id.clone());
        }
    }
    groups
        .into_iter()
        .map(|((member_id, _), (posts, firsts, times))| {
            events::impressions_recorded_at(member_id, posts, firsts, times)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaction(post: &str, member: &str, t: ReactionType, time: i64) -> ReactionRecord {
        ReactionRecord {
            post_id: post.into(),
            member_id: member.into(),
            reaction_type: t,
            create_time: time,
        }
    }

    #[test]
    fn reactions_fold_per_post_and_member_in_request_order() {
        use ReactionType::*;
        let folded = fold_reactions(&[
            reaction("p2", "m1", Like, 5),
            reaction("p1", "m1", Love, 3),
            reaction("p2", "m1", Funny, 4),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].post_id, "p1");
        assert_eq!(folded[1].types, [Like, Funny]);
        assert_eq!((folded[1].first_time, folded[1].last_time), (4, 4));
        assert_eq!(folded[1].final_type(), Funny);
        // The last replaces the first; it is written unless stored already.
        assert_eq!(folded[1].outcome(None), (1, 1));
        assert_eq!(folded[1].outcome(Some(Like)), (1, 1));
        assert_eq!(folded[1].outcome(Some(Funny)), (0, 2));
    }

    #[test]
    fn deltas_move_a_changed_reaction_and_drop_cancelled_posts() {
        use ReactionType::*;
        let mut deltas = StatsDeltas::default();
        let changed = &fold_reactions(&[reaction("p1", "m1", Love, 1)])[0];
        deltas.reaction_change(changed, Some(Like));
        deltas.share("p2");
        deltas.share("p3");
        deltas.add("p3", SHARE_COUNT, -1);
        let rows = deltas.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, "p1");
        assert_eq!(rows[0].1[Like.index()], -1);
        assert_eq!(rows[0].1[Love.index()], 1);
        assert_eq!(rows[1], ("p2", [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]));
    }

    #[test]
    fn repeated_impressions_of_a_day_fold_to_the_earliest() {
        let day = crate::domain::DAY_MICROS;
        let view = |post: &str, time: i64| ImpressionRecord {
            post_id: post.into(),
            member_id: "m1".into(),
            view_time: time,
        };
        let (kept, dropped) = fold_impressions(&[
            view("p1", day + 9),
            view("p1", day + 2),
            view("p1", 2 * day),
        ]);
        assert_eq!(dropped, 1);
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].day, kept[0].time), (1, day + 2));
        assert_eq!(first_views(&kept), [("m1".into(), "p1".into(), day + 2)]);
    }
}
