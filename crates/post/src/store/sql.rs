//! The statements both backends run, `?` placeholders as SQLite takes them; PostgreSQL numbers
//! them (`pronet_common::db::numbered`). Each lists its binds in order; where a post's lists
//! (hashtags, mentions) are bound, each backend binds them as it stores them (JSON text on
//! SQLite, `TEXT[]` on PostgreSQL).

/// A post's columns in the order both backends select them, each prefixed with `$p` (a table
/// alias and a dot, or nothing): a macro so the statements below can `concat!` them.
#[rustfmt::skip]
macro_rules! post_columns {
    ($p:literal) => {
        concat!(
            $p, "id, ", $p, "author_id, ", $p, "text, ", $p, "visibility, ", $p, "hashtags, ",
            $p, "mentions, ", $p, "create_time, ", $p, "update_time, ", $p, "reshare_of, ",
            $p, "mentioned_members"
        )
    };
}

/// The columns of a post, in the order both backends select them.
pub(crate) const POST_COLUMNS: &str = post_columns!("");

// Reads of posts, deleted ones left out unless said.
/// The post (`?`: id).
pub(crate) const GET_POST: &str = concat!(
    "SELECT ",
    post_columns!(""),
    " FROM posts WHERE id = ? AND delete_time IS NULL"
);
/// The post, also when deleted (`?`: id).
pub(crate) const STORED_POST: &str =
    concat!("SELECT ", post_columns!(""), " FROM posts WHERE id = ?");
/// A page of the posts carrying a hashtag, newest first, along post_hashtags' primary key
/// (`?`: hashtag, cursor time, cursor id, limit).
pub(crate) const POSTS_BY_HASHTAG: &str = concat!(
    "SELECT ",
    post_columns!("p."),
    " FROM post_hashtags h JOIN posts p ON p.id = h.post_id \
     WHERE h.hashtag = ? AND (h.create_time, h.post_id) < (?, ?) \
       AND p.delete_time IS NULL \
     ORDER BY h.create_time DESC, h.post_id DESC LIMIT ?"
);

// Hashtag counts.
/// Posts per hashtag created in a window (`?`: since, until).
pub(crate) const COUNT_HASHTAG_POSTS: &str = "SELECT hashtag, COUNT(*) FROM post_hashtags \
    WHERE create_time >= ? AND create_time < ? GROUP BY hashtag";

// Idempotency keys.
/// Claims a key; changes no row when it is taken (`?`: caller, request id, post id, now).
pub(crate) const CLAIM_KEY: &str =
    "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
     VALUES (?, ?, ?, ?) ON CONFLICT (caller, request_id) DO NOTHING";
/// The post a key created (`?`: caller, request id).
pub(crate) const RECORDED_KEY: &str =
    "SELECT resource_id FROM idempotency_keys WHERE caller = ? AND request_id = ?";

// Edits and deletes.
/// Soft-deletes a post not deleted yet, returning its author (`?`: delete time, id).
pub(crate) const DELETE_POST: &str = "UPDATE posts SET delete_time = ? \
    WHERE id = ? AND delete_time IS NULL RETURNING author_id";
/// Removes a post's hashtag rows (`?`: post id).
pub(crate) const DELETE_POST_HASHTAGS: &str = "DELETE FROM post_hashtags WHERE post_id = ?";
/// Replaces the text of a post not deleted and what was extracted from it, returning the post
/// (`?`: text, hashtags, mentions, mentioned members as JSON, update time, id).
pub(crate) const UPDATE_POST: &str = concat!(
    "UPDATE posts SET text = ?, hashtags = ?, mentions = ?, mentioned_members = ?, \
       update_time = ? \
     WHERE id = ? AND delete_time IS NULL RETURNING ",
    post_columns!("")
);

// Exports.
/// The first keyset page of the posts not deleted created at or after a time, in
/// (create_time, id) order along posts_by_time (`?`: since, limit). The later pages differ
/// per backend.
pub(crate) const EXPORT_POSTS_FIRST_PAGE: &str = concat!(
    "SELECT ",
    post_columns!(""),
    " FROM posts WHERE create_time >= ? AND delete_time IS NULL \
     ORDER BY create_time, id LIMIT ?"
);
/// A page of the deleted posts created at or after a time, by id (`?`: since, after id,
/// limit).
pub(crate) const EXPORT_DELETED_POSTS: &str = "SELECT id, author_id, delete_time FROM posts \
    WHERE create_time >= ? AND delete_time IS NOT NULL AND id > ? \
    ORDER BY id LIMIT ?";
