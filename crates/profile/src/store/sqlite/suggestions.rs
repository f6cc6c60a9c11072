//! People you may know: the second-degree candidates and the affinity they are scored with, read in one snapshot.

use super::*;

impl SqliteProfileStore {
    pub(super) async fn find_suggestion_candidates(
        &self,
        member_id: &str,
    ) -> StoreResult<SuggestionInputs> {
        // One snapshot for every query.
        let mut tx = self.db.reader.begin().await?;
        let Some((industry, positions, education)) = sqlx::query_as::<_, (String, String, String)>(
            "SELECT industry, positions, education FROM profiles WHERE id = ?",
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
        // Each expanded connection brings its FANOUT_CAP most recent connections as one JSON
        // array (one search of connections_newest each), so a hub among them costs no more
        // than FANOUT_CAP ids and the whole walk at most EXPANSION_CAP x FANOUT_CAP. They are
        // counted and ranked here, in memory: SQLite's GROUP BY and sort of those rows cost
        // several times more than the walk itself.
        let expansions: Vec<(String, String)> = sqlx::query_as(&format!(
            "WITH n AS ({EXPANDED}) SELECT n.id, (SELECT json_group_array(o) FROM ( \
               SELECT f.other_id AS o FROM connections f WHERE f.member_id = n.id \
               ORDER BY f.create_time DESC, f.other_id DESC LIMIT ?3)) FROM n"
        ))
        .bind(member_id)
        .bind(limits::SUGGESTION_EXPANSION_CAP as i64)
        .bind(limits::SUGGESTION_FANOUT_CAP as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut lists = Vec::with_capacity(expansions.len());
        for (id, reached) in expansions {
            lists.push((id, from_json::<String>(&reached, "connections")?));
        }
        let reached = count_reached(member_id, &lists);
        // The exclusions, primary-key probes, run in rank order until CANDIDATE_CAP pass (no
        // ORDER BY: json_each yields the array in order, and a sort would make SQLite probe
        // every member reached before the LIMIT): a few hundred probes, not five for each of
        // thousands. The kept come back with their index in the ranking.
        // Only those kept are compared with the member: primary-key probes of the company and
        // school key tables (with the member's keys) and of the candidate's industry key,
        // never their profiles' JSON.
        let ranked: Vec<&str> = reached.iter().map(|r| r.member_id).collect();
        let industry_key = member.industry.as_ref().map(|(k, _)| k.as_str());
        type Row = (i64, String, String, Option<bool>);
        let mut kept: Vec<Row> = sqlx::query_as(
            "SELECT h.key, \
               (SELECT json_group_array(k.value) FROM json_each(?4) k WHERE EXISTS (SELECT 1 \
                 FROM profile_companies pc WHERE pc.member_id = h.value \
                 AND pc.company_key = k.value)), \
               (SELECT json_group_array(k.value) FROM json_each(?5) k WHERE EXISTS (SELECT 1 \
                 FROM profile_schools ps WHERE ps.member_id = h.value \
                 AND ps.school_key = k.value)), \
               (SELECT p.industry_key FROM profiles p WHERE p.id = h.value) = ?6 \
             FROM json_each(?2) h \
             WHERE NOT EXISTS (SELECT 1 FROM connections x \
                 WHERE x.member_id = ?1 AND x.other_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = ?1 AND blocker_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM invitations WHERE inviter_id = ?1 AND state = ?7 \
                 AND invitee_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM invitations WHERE invitee_id = ?1 AND state = ?7 \
                 AND inviter_id = h.value) \
             LIMIT ?3",
        )
        .bind(member_id)
        .bind(serde_json::to_string(&ranked).unwrap_or_default())
        .bind(limits::SUGGESTION_CANDIDATE_CAP as i64)
        .bind(serde_json::to_string(&member.company_keys()).unwrap_or_default())
        .bind(serde_json::to_string(&member.school_keys()).unwrap_or_default())
        .bind(industry_key)
        .bind(InvitationState::Pending as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        kept.sort_unstable_by_key(|(index, ..)| *index);
        let mut candidates = Vec::with_capacity(kept.len());
        for (index, companies, schools, same_industry) in kept {
            let r = usize::try_from(index)
                .ok()
                .and_then(|i| reached.get(i))
                .ok_or_else(|| ProfileError::corrupt(format!("suggestion index {index}")))?;
            candidates.push(SuggestionCandidate {
                affinity: Affinity::of_shared_keys(
                    from_json(&companies, "company keys")?,
                    from_json(&schools, "school keys")?,
                    industry_key
                        .filter(|_| same_industry == Some(true))
                        .map(str::to_owned),
                ),
                member_id: r.member_id.to_owned(),
                mutual_count: r.mutual_ids.len() as i64,
                mutual_ids: r
                    .mutual_ids
                    .iter()
                    .take(limits::MAX_MUTUAL_IDS)
                    .map(|id| (*id).to_owned())
                    .collect(),
            });
        }
        Ok(SuggestionInputs { member, candidates })
    }
}
