//! Profiles: creating, updating and importing them with their search index rows.

use super::*;

/// Inserts a profile row; with `skip_conflicts`, a taken id or handle inserts nothing (the
/// result says how many rows were inserted). The tsvector column follows by itself.
pub(super) async fn insert_profile_row(
    tx: &mut PgConnection,
    id: &str,
    f: &ProfileFields,
    now: i64,
    skip_conflicts: bool,
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    let doc = f.search_document();
    let sql = format!(
        "INSERT INTO profiles (id, handle, handle_key, display_name, headline, summary, \
         location, industry, skills, positions, education, open_to_work, location_key, \
         industry_key, skills_text, positions_text, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12, $13, \
         $14, $15, $16, $17, $17){}",
        if skip_conflicts {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        }
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(f.handle.as_str())
        .bind(f.handle.key())
        .bind(&f.display_name)
        .bind(&f.headline)
        .bind(&f.summary)
        .bind(&f.location)
        .bind(&f.industry)
        .bind(skills_json(&f.skills))
        .bind(to_json(&f.positions))
        .bind(to_json(&f.education))
        .bind(f.open_to_work)
        .bind(&doc.location_key)
        .bind(&doc.industry_key)
        .bind(&doc.skills_text)
        .bind(&doc.positions_text)
        .bind(now)
        .execute(&mut *tx)
        .await
}
