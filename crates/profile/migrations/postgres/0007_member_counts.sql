-- Each member's connection and follower counts, kept in step with the rows they count by
-- triggers in the same transaction: a profile's counts and the degree search's choice of the
-- smaller side are one primary-key read, not a count of a hub's tens of thousands of rows.
-- The triggers run once per statement and upsert the counts in member order, so transactions
-- lock count rows in one global order and cannot deadlock on them; concurrent changes add up
-- exactly under the row locks.
CREATE TABLE member_counts (
    member_id   TEXT COLLATE "C" PRIMARY KEY,
    connections BIGINT NOT NULL DEFAULT 0,
    followers   BIGINT NOT NULL DEFAULT 0
);

-- No connection or follow may be written between the backfill and the triggers (older
-- replicas may still be running during a rolling deploy): such a row would be counted nowhere.
LOCK TABLE connections, follows IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO member_counts (member_id, connections)
    SELECT member_id, COUNT(*) FROM connections GROUP BY member_id;
INSERT INTO member_counts (member_id, followers)
    SELECT target, COUNT(*) FROM follows WHERE target_kind = 1 GROUP BY target
    ON CONFLICT (member_id) DO UPDATE SET followers = excluded.followers;

-- One function per counted table, for both its triggers: `changed` is the inserted rows (added)
-- or the deleted ones (taken away).
CREATE FUNCTION member_counts_connections() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO member_counts AS m (member_id, connections)
        SELECT member_id, CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END * COUNT(*)
        FROM changed GROUP BY member_id ORDER BY member_id
        ON CONFLICT (member_id) DO UPDATE SET connections = m.connections + excluded.connections;
    RETURN NULL;
END;
$$;
CREATE TRIGGER member_counts_connected AFTER INSERT ON connections
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION member_counts_connections();
CREATE TRIGGER member_counts_disconnected AFTER DELETE ON connections
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION member_counts_connections();

CREATE FUNCTION member_counts_followers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO member_counts AS m (member_id, followers)
        SELECT target, CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END * COUNT(*)
        FROM changed WHERE target_kind = 1 GROUP BY target ORDER BY target
        ON CONFLICT (member_id) DO UPDATE SET followers = m.followers + excluded.followers;
    RETURN NULL;
END;
$$;
CREATE TRIGGER member_counts_followed AFTER INSERT ON follows
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION member_counts_followers();
CREATE TRIGGER member_counts_unfollowed AFTER DELETE ON follows
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION member_counts_followers();
