//! Ranking profiles: the signals' weights and the ranker's parameters, read from a documented
//! TOML file (`crates/feed/ranking.toml` is the built-in one) and validated at load, so a
//! profile that loads ranks. Several profiles live in one file: the default, the published
//! ones members may pick per request (A/B comparison), and unpublished ones only services may
//! pick (the classic baselines `pronet bench eval` compares against, ablations).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

/// The built-in profiles, used when no file is given.
pub const BUILT_IN: &str = include_str!("../../ranking.toml");

/// One input of the score. A candidate's score is `exp(Σ weight × value)`: each signal's
/// value is on a log scale, so a weight of 1 multiplies the score by `e^value` and a weight of
/// 0 switches the signal off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// `ln(q / prior_rate)`: q is the post's engagement per exposure (reactions weighted by
    /// type, comments, shares) smoothed toward `prior_rate` by `prior_strength` exposures (a
    /// Beta prior), so 3 reactions from 10 viewers beat 30 from 10,000.
    Quality,
    /// `ln(1 + weighted engagement)`: raw popularity, however many saw the post.
    Popularity,
    /// `-ln 2 × age / half_life`: the score halves every `half_life_hours`.
    Freshness,
    /// `-ln(age in hours + 2)`: Lemmy's gravity (its hot rank uses weight 1.8).
    AgeGravity,
    /// `ln(ln(max(2, reactions + 2)))`: Lemmy's vote term.
    Votes,
    /// `ln(0.001 + (27 × comments + shares + 0.5 × reactions) / impressions)`: X's 2023
    /// published weights (reply 27, repost 1, like 0.5), per impression.
    XRate,
    /// `ln(Σ P(kind) × value(kind))` over react, comment and share: the learned model's
    /// probabilities that the viewer engages so when shown the post now, times the profile's
    /// `model` values (see `domain::model`).
    ExpectedEngagement,
    /// Mean over the post's hashtags of `ln(r_tag / r_all)`: how much more (or less) the
    /// viewer engages with posts carrying the tag than with what they are shown overall,
    /// learned from their own engagement and impressions with time decay.
    HashtagInterest,
    /// `ln(r_author / r_all)`: the same, for the post's author.
    AuthorAffinity,
    /// `ln(tie)`: the relation to the author (`tie_connection`, `tie_followed`, `tie_other`).
    Tie,
    /// `ln(1 + n)`: n distinct connections reacted, commented or shared.
    SocialProof,
    /// Followed hashtags the post carries (at most 2).
    FollowedHashtag,
    /// 1 when the viewer was already shown the post.
    Seen,
    /// k for the author's (k+1)-th post in this ranking.
    AuthorRepeat,
    /// Hashtags the post shares with the `diversity_window` items ranked just above it.
    TopicRepeat,
}

impl Signal {
    pub const COUNT: usize = 15;
    pub const ALL: [Signal; Self::COUNT] = [
        Self::Quality,
        Self::Popularity,
        Self::Freshness,
        Self::AgeGravity,
        Self::Votes,
        Self::XRate,
        Self::ExpectedEngagement,
        Self::HashtagInterest,
        Self::AuthorAffinity,
        Self::Tie,
        Self::SocialProof,
        Self::FollowedHashtag,
        Self::Seen,
        Self::AuthorRepeat,
        Self::TopicRepeat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Quality => "quality",
            Self::Popularity => "popularity",
            Self::Freshness => "freshness",
            Self::AgeGravity => "age_gravity",
            Self::Votes => "votes",
            Self::XRate => "x_rate",
            Self::ExpectedEngagement => "expected_engagement",
            Self::HashtagInterest => "hashtag_interest",
            Self::AuthorAffinity => "author_affinity",
            Self::Tie => "tie",
            Self::SocialProof => "social_proof",
            Self::FollowedHashtag => "followed_hashtag",
            Self::Seen => "seen",
            Self::AuthorRepeat => "author_repeat",
            Self::TopicRepeat => "topic_repeat",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Which factor of the score breakdown the signal belongs to.
    pub fn group(self) -> Group {
        match self {
            Self::Quality
            | Self::Popularity
            | Self::Votes
            | Self::XRate
            | Self::ExpectedEngagement => Group::Engagement,
            Self::Freshness | Self::AgeGravity => Group::Freshness,
            Self::HashtagInterest
            | Self::AuthorAffinity
            | Self::Tie
            | Self::SocialProof
            | Self::FollowedHashtag
            | Self::Seen => Group::Affinity,
            Self::AuthorRepeat | Self::TopicRepeat => Group::Diversity,
        }
    }
}

/// The four factors of the score breakdown (each the exp of its signals' contributions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Engagement,
    Freshness,
    Affinity,
    Diversity,
}

/// A profile's parameters (the signals' own constants and the ranker's rules).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Weight of each reaction type in engagement (quality, popularity).
    pub reaction_weights: ReactionWeights,
    pub comment_weight: f64,
    pub share_weight: f64,
    /// Weighted engagement per exposure expected of a post nobody has seen yet.
    pub prior_rate: f64,
    /// How many exposures the prior is worth.
    pub prior_strength: f64,
    /// Hours for `freshness` to halve the score.
    pub half_life_hours: f64,
    pub tie_connection: f64,
    pub tie_followed: f64,
    pub tie_other: f64,
    /// Hours for a past engagement or impression to count half in the learned interests.
    pub interest_half_life_hours: f64,
    /// Exposures the viewer's overall rate is worth when estimating a hashtag's or author's.
    pub interest_prior_strength: f64,
    /// Exposures without engagement a hidden post adds to its author and hashtags.
    pub hide_exposures: f64,
    /// Most posts of one author in a ranking (0: no cap).
    pub author_cap: usize,
    /// Items above a post that `topic_repeat` compares its hashtags with (0: off).
    pub diversity_window: usize,
    /// Posts the viewer reacted to, commented on or shared leave their feed.
    pub drop_engaged: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            reaction_weights: ReactionWeights::default(),
            comment_weight: 3.0,
            share_weight: 4.0,
            prior_rate: 0.05,
            prior_strength: 20.0,
            half_life_hours: 36.0,
            tie_connection: 1.0,
            tie_followed: 0.8,
            tie_other: 0.4,
            interest_half_life_hours: 168.0,
            interest_prior_strength: 5.0,
            hide_exposures: 10.0,
            author_cap: 0,
            diversity_window: 0,
            drop_engaged: false,
        }
    }
}

/// Weight of each reaction type.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReactionWeights {
    pub like: f64,
    pub celebrate: f64,
    pub support: f64,
    pub love: f64,
    pub insightful: f64,
    pub funny: f64,
}

impl Default for ReactionWeights {
    fn default() -> Self {
        Self {
            like: 1.0,
            celebrate: 1.0,
            support: 1.0,
            love: 1.0,
            insightful: 1.0,
            funny: 1.0,
        }
    }
}

impl ReactionWeights {
    /// In `Counts::reactions` order.
    pub fn as_array(&self) -> [f64; 6] {
        [
            self.like,
            self.celebrate,
            self.support,
            self.love,
            self.insightful,
            self.funny,
        ]
    }
}

/// One ranking profile, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingProfile {
    pub name: String,
    pub description: String,
    /// Members may pick it per request; unpublished ones are for services.
    pub published: bool,
    /// Per signal, in [`Signal::ALL`] order; 0 for a signal the file leaves out.
    pub weights: [f64; Signal::COUNT],
    pub params: Params,
    /// What each engagement kind the learned model predicts is worth (`expected_engagement`).
    pub model: ModelValues,
}

/// What each engagement kind is worth in `expected_engagement`: comments and shares above
/// reactions, as the seed asks.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelValues {
    pub react: f64,
    pub comment: f64,
    pub share: f64,
}

impl Default for ModelValues {
    fn default() -> Self {
        Self {
            react: 1.0,
            comment: 3.0,
            share: 4.0,
        }
    }
}

impl ModelValues {
    /// In `domain::model::Kind` order.
    pub fn as_array(&self) -> [f64; 3] {
        [self.react, self.comment, self.share]
    }
}

impl RankingProfile {
    pub fn weight(&self, s: Signal) -> f64 {
        self.weights[s as usize]
    }

    /// A copy with `signal` switched off (for ablations).
    pub fn without(&self, signal: Signal) -> Self {
        let mut p = self.clone();
        p.weights[signal as usize] = 0.0;
        p.name = format!("{}-no-{}", self.name, signal.name());
        p
    }
}

/// Every profile of a file, and which is the default.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSet {
    default: Arc<RankingProfile>,
    profiles: BTreeMap<String, Arc<RankingProfile>>,
}

/// Why a profile file was refused, naming the profile and field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Parse(String),
    #[error("profile {profile:?}: {field} {why}")]
    Invalid {
        profile: String,
        field: String,
        why: String,
    },
    #[error("the default profile {0:?} is not defined")]
    NoDefault(String),
}

/// Why a request's profile cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("names no profile (known: {0})")]
    Unknown(String),
    #[error("is not published (members may pick: {0})")]
    Unpublished(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    default: String,
    profiles: BTreeMap<String, ProfileRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRepr {
    #[serde(default)]
    description: String,
    #[serde(default)]
    published: bool,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
    #[serde(default)]
    params: Params,
    #[serde(default)]
    model: ModelValues,
}

fn invalid(profile: &str, field: &str, why: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        profile: profile.to_owned(),
        field: field.to_owned(),
        why: why.into(),
    }
}

fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            "name",
            "must be 1-64 characters of a-z, 0-9, '_' and '-'",
        ))
    }
}

impl Params {
    fn validate(&self, profile: &str) -> Result<(), ProfileError> {
        let finite = |field: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(invalid(profile, field, "must be a finite number"))
            }
        };
        let positive = |field: &str, v: f64| {
            finite(field, v)?;
            if v > 0.0 {
                Ok(())
            } else {
                Err(invalid(profile, field, format!("must be > 0, got {v}")))
            }
        };
        let non_negative = |field: &str, v: f64| {
            finite(field, v)?;
            if v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(profile, field, format!("must be >= 0, got {v}")))
            }
        };
        let r = &self.reaction_weights;
        for (field, v) in [
            ("params.reaction_weights.like", r.like),
            ("params.reaction_weights.celebrate", r.celebrate),
            ("params.reaction_weights.support", r.support),
            ("params.reaction_weights.love", r.love),
            ("params.reaction_weights.insightful", r.insightful),
            ("params.reaction_weights.funny", r.funny),
            ("params.comment_weight", self.comment_weight),
            ("params.share_weight", self.share_weight),
            ("params.prior_strength", self.prior_strength),
            ("params.hide_exposures", self.hide_exposures),
        ] {
            non_negative(field, v)?;
        }
        for (field, v) in [
            ("params.prior_rate", self.prior_rate),
            ("params.half_life_hours", self.half_life_hours),
            ("params.tie_connection", self.tie_connection),
            ("params.tie_followed", self.tie_followed),
            ("params.tie_other", self.tie_other),
            (
                "params.interest_half_life_hours",
                self.interest_half_life_hours,
            ),
            (
                "params.interest_prior_strength",
                self.interest_prior_strength,
            ),
        ] {
            positive(field, v)?;
        }
        if self.diversity_window > 100 {
            return Err(invalid(
                profile,
                "params.diversity_window",
                "must be <= 100",
            ));
        }
        Ok(())
    }
}

impl ProfileSet {
    /// Parses and validates a profile file.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let file: FileRepr =
            toml::from_str(text).map_err(|e| ProfileError::Parse(e.to_string()))?;
        let mut profiles = BTreeMap::new();
        for (name, p) in file.profiles {
            check_name(&name)?;
            let mut weights = [0.0; Signal::COUNT];
            for (signal, w) in &p.weights {
                let Some(s) = Signal::from_name(signal) else {
                    let known: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
                    return Err(invalid(
                        &name,
                        &format!("weights.{signal}"),
                        format!("is not a signal (known: {})", known.join(", ")),
                    ));
                };
                if !w.is_finite() {
                    return Err(invalid(
                        &name,
                        &format!("weights.{signal}"),
                        "must be a finite number",
                    ));
                }
                weights[s as usize] = *w;
            }
            p.params.validate(&name)?;
            for (field, v) in [
                ("model.react", p.model.react),
                ("model.comment", p.model.comment),
                ("model.share", p.model.share),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(invalid(&name, field, format!("must be >= 0, got {v}")));
                }
            }
            profiles.insert(
                name.clone(),
                Arc::new(RankingProfile {
                    name,
                    description: p.description,
                    published: p.published,
                    weights,
                    params: p.params,
                    model: p.model,
                }),
            );
        }
        let default = profiles
            .get(&file.default)
            .cloned()
            .ok_or(ProfileError::NoDefault(file.default))?;
        Ok(Self { default, profiles })
    }

    /// The built-in profiles.
    pub fn built_in() -> Self {
        Self::parse(BUILT_IN).expect("the built-in ranking.toml is valid (tested)")
    }

    pub fn default_profile(&self) -> &Arc<RankingProfile> {
        &self.default
    }

    pub fn get(&self, name: &str) -> Option<&Arc<RankingProfile>> {
        self.profiles.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<RankingProfile>> {
        self.profiles.values()
    }

    /// The profile a request names: the default for an empty name; members may pick only
    /// published profiles, services any.
    pub fn pick(&self, name: &str, member: bool) -> Result<Arc<RankingProfile>, PickError> {
        if name.is_empty() {
            return Ok(self.default.clone());
        }
        let names = |published_only: bool| {
            self.profiles
                .values()
                .filter(|p| !published_only || p.published)
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.profiles.get(name) {
            Some(p) if p.published || !member => Ok(p.clone()),
            Some(_) => Err(PickError::Unpublished(names(true))),
            None => Err(PickError::Unknown(names(member))),
        }
    }

    /// The set as a profile file ([`ProfileSet::parse`] reads it back equal).
    pub fn to_toml(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("default = {:?}\n", self.default.name);
        for p in self.profiles.values() {
            let name = &p.name;
            let _ = write!(
                out,
                "\n[profiles.{name:?}]\ndescription = {:?}\npublished = {}\n\n[profiles.{name:?}.weights]\n",
                p.description, p.published
            );
            for s in Signal::ALL {
                if p.weight(s) != 0.0 {
                    let _ = writeln!(out, "{} = {:?}", s.name(), p.weight(s));
                }
            }
            let q = &p.params;
            let r = &q.reaction_weights;
            let _ = write!(
                out,
                "\n[profiles.{name:?}.params]\nreaction_weights = {{ like = {:?}, celebrate = {:?}, support = {:?}, love = {:?}, insightful = {:?}, funny = {:?} }}\n",
                r.like, r.celebrate, r.support, r.love, r.insightful, r.funny
            );
            for (field, v) in [
                ("comment_weight", q.comment_weight),
                ("share_weight", q.share_weight),
                ("prior_rate", q.prior_rate),
                ("prior_strength", q.prior_strength),
                ("half_life_hours", q.half_life_hours),
                ("tie_connection", q.tie_connection),
                ("tie_followed", q.tie_followed),
                ("tie_other", q.tie_other),
                ("interest_half_life_hours", q.interest_half_life_hours),
                ("interest_prior_strength", q.interest_prior_strength),
                ("hide_exposures", q.hide_exposures),
            ] {
                let _ = writeln!(out, "{field} = {v:?}");
            }
            let _ = writeln!(
                out,
                "author_cap = {}\ndiversity_window = {}\ndrop_engaged = {}",
                q.author_cap, q.diversity_window, q.drop_engaged
            );
            let m = &p.model;
            let _ = writeln!(
                out,
                "\n[profiles.{name:?}.model]\nreact = {:?}\ncomment = {:?}\nshare = {:?}",
                m.react, m.comment, m.share
            );
        }
        out
    }

    /// Adds (or replaces) a profile, e.g. an ablation built with [`RankingProfile::without`].
    pub fn insert(&mut self, profile: RankingProfile) {
        let p = Arc::new(profile);
        if p.name == self.default.name {
            self.default = p.clone();
        }
        self.profiles.insert(p.name.clone(), p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_file_loads_with_its_documented_profiles() {
        let set = ProfileSet::built_in();
        assert_eq!(set.default_profile().name, "pronet");
        for name in [
            "pronet",
            "learned",
            "chronological",
            "popularity",
            "lemmy_hot",
            "x_2023",
        ] {
            assert!(set.get(name).is_some(), "{name} missing");
        }
        assert!(set.get("pronet").unwrap().published);
        // The learned profile ranks by the model's expected engagement, comments and shares
        // worth more than reactions.
        let learned = set.get("learned").unwrap();
        assert!(learned.published);
        assert_eq!(learned.weight(Signal::ExpectedEngagement), 1.0);
        assert_eq!(learned.weight(Signal::Quality), 0.0);
        assert_eq!(learned.model.as_array(), [1.0, 3.0, 4.0]);
        assert!(!set.get("lemmy_hot").unwrap().published);
        // Lemmy's hot rank: votes / (hours + 2)^1.8.
        let lemmy = set.get("lemmy_hot").unwrap();
        assert_eq!(lemmy.weight(Signal::AgeGravity), 1.8);
        assert_eq!(lemmy.weight(Signal::Votes), 1.0);
    }

    #[test]
    fn members_pick_published_profiles_services_any() {
        let set = ProfileSet::built_in();
        assert_eq!(set.pick("", true).unwrap().name, "pronet");
        assert_eq!(
            set.pick("chronological", true).unwrap().name,
            "chronological"
        );
        assert!(matches!(
            set.pick("lemmy_hot", true),
            Err(PickError::Unpublished(_))
        ));
        assert_eq!(set.pick("lemmy_hot", false).unwrap().name, "lemmy_hot");
        let err = set.pick("nope", true).unwrap_err();
        assert!(
            matches!(err, PickError::Unknown(ref known) if known.contains("pronet") && !known.contains("lemmy"))
        );
    }

    #[test]
    fn bad_files_are_refused_naming_the_field() {
        let cases = [
            (
                "default = \"a\"\n[profiles.a.weights]\nfreshnes = 1.0\n",
                "weights.freshnes is not a signal",
            ),
            (
                "default = \"a\"\n[profiles.a.params]\nhalf_life_hours = 0\n",
                "params.half_life_hours must be > 0",
            ),
            (
                "default = \"a\"\n[profiles.a.params]\ncomment_weight = -1\n",
                "params.comment_weight must be >= 0",
            ),
            (
                "default = \"b\"\n[profiles.a]\n",
                "the default profile \"b\" is not defined",
            ),
            ("default = \"a\"\n[profiles.A]\n", "name must be"),
            (
                "default = \"a\"\n[profiles.a]\nunknown = 1\n",
                "unknown field",
            ),
            ("default = ", "TOML"),
        ];
        for (text, expected) in cases {
            let err = ProfileSet::parse(text).unwrap_err().to_string();
            assert!(
                err.contains(expected) || (expected == "TOML" && !err.is_empty()),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn a_set_written_as_toml_reads_back_equal() {
        let mut set = ProfileSet::built_in();
        set.insert(set.default_profile().without(Signal::Seen));
        let text = set.to_toml();
        assert_eq!(ProfileSet::parse(&text).unwrap(), set, "{text}");
    }

    #[test]
    fn an_ablation_switches_one_signal_off() {
        let set = ProfileSet::built_in();
        let p = set.default_profile().without(Signal::Quality);
        assert_eq!(p.weight(Signal::Quality), 0.0);
        assert_eq!(p.name, "pronet-no-quality");
        assert_eq!(
            p.weight(Signal::Freshness),
            set.default_profile().weight(Signal::Freshness)
        );
    }
}
