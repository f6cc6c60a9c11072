-- Work history, education and openness to work; what filters, suggestions and full-text search
-- read. Keys (location_key, industry_key, skill_key, company_key) are the canonical keys the
-- service computes (NFC, trimmed, spaces collapsed, lowercase); rows written before this
-- migration get SQLite's ASCII lower(trim()), the same for plain ASCII text.
ALTER TABLE profiles ADD COLUMN positions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE profiles ADD COLUMN education TEXT NOT NULL DEFAULT '[]';
ALTER TABLE profiles ADD COLUMN open_to_work INTEGER NOT NULL DEFAULT 0;
ALTER TABLE profiles ADD COLUMN location_key TEXT NOT NULL DEFAULT '';
ALTER TABLE profiles ADD COLUMN industry_key TEXT NOT NULL DEFAULT '';
-- The flat texts full-text search indexes ("Rust · Go", "Engineer · Acme · ...").
ALTER TABLE profiles ADD COLUMN skills_text TEXT NOT NULL DEFAULT '';
ALTER TABLE profiles ADD COLUMN positions_text TEXT NOT NULL DEFAULT '';
-- The profile's document id in profile_search. Not the rowid: VACUUM may renumber rowids of a
-- table without an INTEGER PRIMARY KEY, this one never changes.
ALTER TABLE profiles ADD COLUMN search_docid INTEGER;

UPDATE profiles SET
    location_key = lower(trim(location)),
    industry_key = lower(trim(industry)),
    skills_text = COALESCE((SELECT group_concat(j.value, ' · ') FROM json_each(profiles.skills) j), ''),
    search_docid = rowid;
CREATE UNIQUE INDEX profiles_search_docid ON profiles (search_docid);
-- Filters without words, newest first within each.
CREATE INDEX profiles_location ON profiles (location_key, update_time DESC);
CREATE INDEX profiles_industry ON profiles (industry_key, update_time DESC);
CREATE INDEX profiles_open_to_work ON profiles (update_time DESC) WHERE open_to_work = 1;
CREATE INDEX profiles_recent ON profiles (update_time DESC, id);

-- Skill keys of each member: "has every one of these skills" is one index search per skill.
CREATE TABLE profile_skills (
    member_id TEXT NOT NULL REFERENCES profiles (id),
    skill_key TEXT NOT NULL,
    PRIMARY KEY (member_id, skill_key)
) WITHOUT ROWID;
CREATE INDEX profile_skills_by_key ON profile_skills (skill_key, member_id);
INSERT OR IGNORE INTO profile_skills (member_id, skill_key)
    SELECT p.id, lower(trim(j.value)) FROM profiles p, json_each(p.skills) j;

-- Current companies (positions marked current) of each member.
CREATE TABLE profile_companies (
    member_id   TEXT NOT NULL REFERENCES profiles (id),
    company_key TEXT NOT NULL,
    PRIMARY KEY (member_id, company_key)
) WITHOUT ROWID;
CREATE INDEX profile_companies_by_key ON profile_companies (company_key, member_id);

-- Full-text index over the profile texts, external content (the texts live in profiles only),
-- kept in step by triggers inside every writing transaction. Columns in bm25() weight order:
-- headline, skills, positions, summary.
CREATE VIRTUAL TABLE profile_search USING fts5(
    headline, skills_text, positions_text, summary,
    content = 'profiles', content_rowid = 'search_docid', tokenize = 'unicode61'
);
CREATE TRIGGER profiles_search_insert AFTER INSERT ON profiles BEGIN
    INSERT INTO profile_search (rowid, headline, skills_text, positions_text, summary)
    VALUES (new.search_docid, new.headline, new.skills_text, new.positions_text, new.summary);
END;
CREATE TRIGGER profiles_search_update
AFTER UPDATE OF headline, skills_text, positions_text, summary, search_docid ON profiles BEGIN
    INSERT INTO profile_search (profile_search, rowid, headline, skills_text, positions_text, summary)
    VALUES ('delete', old.search_docid, old.headline, old.skills_text, old.positions_text, old.summary);
    INSERT INTO profile_search (rowid, headline, skills_text, positions_text, summary)
    VALUES (new.search_docid, new.headline, new.skills_text, new.positions_text, new.summary);
END;
CREATE TRIGGER profiles_search_delete AFTER DELETE ON profiles BEGIN
    INSERT INTO profile_search (profile_search, rowid, headline, skills_text, positions_text, summary)
    VALUES ('delete', old.search_docid, old.headline, old.skills_text, old.positions_text, old.summary);
END;
INSERT INTO profile_search (profile_search) VALUES ('rebuild');
