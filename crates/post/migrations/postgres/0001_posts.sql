-- The post store on PostgreSQL: the SQLite schema's tables and indexes, in PostgreSQL types.
-- Text keys use the "C" collation: ids and hashtags compare byte by byte, as on SQLite, so
-- both backends order ties (and page) the same way, and btree comparisons stay cheap.
CREATE TABLE posts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    author_id   TEXT COLLATE "C" NOT NULL,
    text        TEXT NOT NULL,
    -- 1 public, 2 connections (the proto's Visibility numbers).
    visibility  SMALLINT NOT NULL,
    -- In order of first appearance: hashtags lowercase without '#', mentions lowercase handles.
    hashtags    TEXT[] NOT NULL DEFAULT '{}',
    mentions    TEXT[] NOT NULL DEFAULT '{}',
    -- Microseconds since the epoch.
    create_time BIGINT NOT NULL
);
-- An author's posts newest first is one index range; the feed's candidate query reads the
-- newest few of each author from it (an index-only scan for id and time).
CREATE INDEX posts_by_author ON posts (author_id, create_time DESC, id DESC);
CREATE INDEX posts_by_time ON posts (create_time);

-- One row per hashtag of a post, written with the post, so "recent posts with #x" is one
-- index range.
CREATE TABLE post_hashtags (
    hashtag     TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    post_id     TEXT COLLATE "C" NOT NULL REFERENCES posts (id),
    PRIMARY KEY (hashtag, create_time, post_id)
);
