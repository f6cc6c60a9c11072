-- The feed asks what a member's connections did lately (ListRecentActivity): a hundred members'
-- reactions and comments of two weeks, thousands of entries. These indexes carry every column
-- the query reads, so it can be answered from the index alone (index-only scans).
CREATE INDEX reactions_activity ON reactions (member_id, create_time DESC) INCLUDE (post_id, reaction_type);
DROP INDEX reactions_by_member;
CREATE INDEX comments_activity ON comments (member_id, create_time DESC) INCLUDE (post_id);
DROP INDEX comments_by_member;
