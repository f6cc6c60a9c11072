CREATE TABLE posts (
    id          TEXT PRIMARY KEY,
    author_id   TEXT NOT NULL,
    text        TEXT NOT NULL,
    -- 1 public, 2 connections (the proto's Visibility numbers).
    visibility  INTEGER NOT NULL,
    -- JSON arrays of strings, in order of first appearance: hashtags lowercase without '#',
    -- mentions lowercase handles.
    hashtags    TEXT NOT NULL DEFAULT '[]',
    mentions    TEXT NOT NULL DEFAULT '[]',
    -- Microseconds since the epoch.
    create_time INTEGER NOT NULL
);
-- An author's posts newest first is one index range.
CREATE INDEX posts_by_author ON posts (author_id, create_time DESC, id DESC);
CREATE INDEX posts_by_time ON posts (create_time);

-- One row per hashtag of a post, written with the post, so "recent posts with #x" is one
-- index range.
CREATE TABLE post_hashtags (
    hashtag     TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    post_id     TEXT NOT NULL REFERENCES posts (id),
    PRIMARY KEY (hashtag, create_time, post_id)
) WITHOUT ROWID;
