-- Each member's connection and follower counts, kept in step with the rows they count by
-- triggers in the same transaction (the counted row's insert or delete locks the count's row,
-- so concurrent changes add up exactly): a profile's counts and the degree search's choice of
-- the smaller side are one primary-key read, not a count of a hub's tens of thousands of rows.
CREATE TABLE member_counts (
    member_id   TEXT COLLATE "C" PRIMARY KEY,
    connections BIGINT NOT NULL DEFAULT 0,
    followers   BIGINT NOT NULL DEFAULT 0
);

INSERT INTO member_counts (member_id, connections)
    SELECT member_id, COUNT(*) FROM connections GROUP BY member_id;
INSERT INTO member_counts (member_id, followers)
    SELECT target, COUNT(*) FROM follows WHERE target_kind = 1 GROUP BY target
    ON CONFLICT (member_id) DO UPDATE SET followers = excluded.followers;

CREATE FUNCTION member_counts_connections() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO member_counts AS m (member_id, connections) VALUES (NEW.member_id, 1)
            ON CONFLICT (member_id) DO UPDATE SET connections = m.connections + 1;
    ELSE
        UPDATE member_counts SET connections = connections - 1 WHERE member_id = OLD.member_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER member_counts_connections AFTER INSERT OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION member_counts_connections();

CREATE FUNCTION member_counts_followers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.target_kind = 1 THEN
            INSERT INTO member_counts AS m (member_id, followers) VALUES (NEW.target, 1)
                ON CONFLICT (member_id) DO UPDATE SET followers = m.followers + 1;
        END IF;
    ELSIF OLD.target_kind = 1 THEN
        UPDATE member_counts SET followers = followers - 1 WHERE member_id = OLD.target;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER member_counts_followers AFTER INSERT OR DELETE ON follows
    FOR EACH ROW EXECUTE FUNCTION member_counts_followers();
