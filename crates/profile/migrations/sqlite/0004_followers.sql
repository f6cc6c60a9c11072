-- Followers of a member, newest first: ListFollowers pages this range and a profile's
-- follower_count counts it, both without touching anyone else's follows.
CREATE INDEX follows_followers ON follows (target_kind, target, create_time DESC, member_id DESC);
