-- The feed asks what a member's connections did lately (ListRecentActivity): a hundred members'
-- reactions and comments of two weeks, thousands of entries. With the member indexes alone each
-- entry costs a lookup of its table row (reaction type, post id), a random read per entry on a
-- cold cache. These indexes carry every column the query reads, so it stays in the index.
CREATE INDEX reactions_activity ON reactions (member_id, create_time DESC, post_id, reaction_type);
DROP INDEX reactions_by_member;
CREATE INDEX comments_activity ON comments (member_id, create_time DESC, post_id);
DROP INDEX comments_by_member;
