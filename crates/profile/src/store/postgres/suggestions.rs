//! People you may know: the second-degree candidates and the affinity they are scored with, read in one snapshot.

use super::*;

impl PgProfileStore {
    pub(super) async fn find_suggestion_candidates(
        &self,
        member_id: &str,
    ) -> StoreResult<SuggestionInputs> {
        // One snapshot for every query.
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let Some((industry, positions, education)) = sqlx::query_as::<_, (String, String, String)>(
            "SELECT industry, positions::text, education::text FROM profiles WHERE id = $1",
        )
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(ProfileError::NotFound("member"));
        };
        let member = Affinity::of(
            &from_json(&positions, "positions")?,
            &from_json(&education, "education")?,
            &industry,
        );
        // Each expanded connection contributes at most FANOUT_CAP of its most recent
        // connections (LATERAL ... LIMIT), so a hub among them costs no more than that. Only
        // the CANDIDATE_CAP kept are compared with the member, through the key tables.
        let expanded = numbered(EXPANDED);
        let sql = format!(
            "WITH n AS ({expanded}), \
             reached AS (SELECT f.other_id AS cand, COUNT(*) AS mutual, \
                 (array_agg(n.id ORDER BY n.id))[1:$9] AS via FROM n \
               CROSS JOIN LATERAL (SELECT c.other_id FROM connections c \
                 WHERE c.member_id = n.id ORDER BY c.create_time DESC, c.other_id DESC \
                 LIMIT $3) f \
               GROUP BY f.other_id), \
             top AS (SELECT cand, mutual, via FROM reached WHERE cand <> $1 AND cand NOT IN ( \
               SELECT other_id FROM connections WHERE member_id = $1 \
               UNION ALL SELECT blocked_id FROM blocks WHERE blocker_id = $1 \
               UNION ALL SELECT blocker_id FROM blocks WHERE blocked_id = $1 \
               UNION ALL SELECT invitee_id FROM invitations WHERE inviter_id = $1 AND state = $5 \
               UNION ALL SELECT inviter_id FROM invitations WHERE invitee_id = $1 AND state = $5) \
               ORDER BY mutual DESC, cand LIMIT $4) \
             SELECT cand, mutual, via, \
               ARRAY(SELECT k FROM unnest($6::text[]) WITH ORDINALITY AS u(k, i) WHERE EXISTS ( \
                 SELECT 1 FROM profile_companies pc WHERE pc.member_id = cand \
                 AND pc.company_key = u.k) ORDER BY u.i), \
               ARRAY(SELECT k FROM unnest($7::text[]) WITH ORDINALITY AS u(k, i) WHERE EXISTS ( \
                 SELECT 1 FROM profile_schools ps WHERE ps.member_id = cand \
                 AND ps.school_key = u.k) ORDER BY u.i), \
               (SELECT p.industry_key FROM profiles p WHERE p.id = cand) = $8 \
             FROM top ORDER BY mutual DESC, cand"
        );
        let industry_key = member.industry.as_ref().map(|(k, _)| k.as_str());
        type Row = (
            String,
            i64,
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Option<bool>,
        );
        let found: Vec<Row> = sqlx::query_as(&sql)
            .bind(member_id)
            .bind(limits::SUGGESTION_EXPANSION_CAP as i64)
            .bind(limits::SUGGESTION_FANOUT_CAP as i64)
            .bind(limits::SUGGESTION_CANDIDATE_CAP as i64)
            .bind(InvitationState::Pending as i64)
            .bind(member.company_keys())
            .bind(member.school_keys())
            .bind(industry_key)
            .bind(limits::MAX_MUTUAL_IDS as i32)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(SuggestionInputs {
            candidates: found
                .into_iter()
                .map(
                    |(id, mutual_count, via, companies, schools, same_industry)| {
                        SuggestionCandidate {
                            affinity: Affinity::of_shared_keys(
                                companies,
                                schools,
                                industry_key
                                    .filter(|_| same_industry == Some(true))
                                    .map(str::to_owned),
                            ),
                            member_id: id,
                            mutual_count,
                            mutual_ids: via,
                        }
                    },
                )
                .collect(),
            member,
        })
    }
}
