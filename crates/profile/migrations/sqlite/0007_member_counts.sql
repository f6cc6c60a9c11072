-- Each member's connection and follower counts, kept in step with the rows they count by
-- triggers in the same transaction: a profile's counts and the degree search's choice of the
-- smaller side are one primary-key read, not a count of a hub's tens of thousands of rows.
CREATE TABLE member_counts (
    member_id   TEXT PRIMARY KEY,
    connections INTEGER NOT NULL DEFAULT 0,
    followers   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO member_counts (member_id, connections)
    SELECT member_id, COUNT(*) FROM connections GROUP BY member_id;
INSERT INTO member_counts (member_id, followers)
    SELECT target, COUNT(*) FROM follows WHERE target_kind = 1 GROUP BY target
    ON CONFLICT (member_id) DO UPDATE SET followers = excluded.followers;

CREATE TRIGGER member_counts_connect AFTER INSERT ON connections BEGIN
    INSERT INTO member_counts (member_id, connections) VALUES (NEW.member_id, 1)
        ON CONFLICT (member_id) DO UPDATE SET connections = connections + 1;
END;
CREATE TRIGGER member_counts_disconnect AFTER DELETE ON connections BEGIN
    UPDATE member_counts SET connections = connections - 1 WHERE member_id = OLD.member_id;
END;
CREATE TRIGGER member_counts_follow AFTER INSERT ON follows WHEN NEW.target_kind = 1 BEGIN
    INSERT INTO member_counts (member_id, followers) VALUES (NEW.target, 1)
        ON CONFLICT (member_id) DO UPDATE SET followers = followers + 1;
END;
CREATE TRIGGER member_counts_unfollow AFTER DELETE ON follows WHEN OLD.target_kind = 1 BEGIN
    UPDATE member_counts SET followers = followers - 1 WHERE member_id = OLD.target;
END;
