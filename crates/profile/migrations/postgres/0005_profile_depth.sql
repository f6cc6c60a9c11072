-- Work history, education and openness to work; what filters, suggestions and full-text search
-- read. Keys (location_key, industry_key, skill_key, company_key) are the canonical keys the
-- service computes (NFC, trimmed, spaces collapsed, lowercase); rows written before this
-- migration get lower(btrim()), the same for plain text.
ALTER TABLE profiles ADD COLUMN positions JSONB NOT NULL DEFAULT '[]';
ALTER TABLE profiles ADD COLUMN education JSONB NOT NULL DEFAULT '[]';
ALTER TABLE profiles ADD COLUMN open_to_work BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE profiles ADD COLUMN location_key TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE profiles ADD COLUMN industry_key TEXT COLLATE "C" NOT NULL DEFAULT '';
-- The flat texts full-text search indexes ("Rust · Go", "Engineer · Acme · ...").
ALTER TABLE profiles ADD COLUMN skills_text TEXT NOT NULL DEFAULT '';
ALTER TABLE profiles ADD COLUMN positions_text TEXT NOT NULL DEFAULT '';

UPDATE profiles SET
    location_key = lower(btrim(location)),
    industry_key = lower(btrim(industry)),
    skills_text = COALESCE((SELECT string_agg(s, ' · ') FROM jsonb_array_elements_text(skills) s), '');

-- Weights: A headline, B skills and positions, C summary. 'simple': no stemming, no stop words,
-- like SQLite's unicode61 tokenizer.
ALTER TABLE profiles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, headline), 'A')
    || setweight(to_tsvector('simple'::regconfig, skills_text), 'B')
    || setweight(to_tsvector('simple'::regconfig, positions_text), 'B')
    || setweight(to_tsvector('simple'::regconfig, summary), 'C')
) STORED;
CREATE INDEX profiles_search ON profiles USING GIN (search_vector);
-- Filters without words, newest first within each.
CREATE INDEX profiles_location ON profiles (location_key, update_time DESC);
CREATE INDEX profiles_industry ON profiles (industry_key, update_time DESC);
CREATE INDEX profiles_open_to_work ON profiles (update_time DESC) WHERE open_to_work;
CREATE INDEX profiles_recent ON profiles (update_time DESC, id);

-- Skill keys of each member: "has every one of these skills" is one index search per skill.
CREATE TABLE profile_skills (
    member_id TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    skill_key TEXT COLLATE "C" NOT NULL,
    CONSTRAINT profile_skills_pkey PRIMARY KEY (member_id, skill_key)
);
CREATE INDEX profile_skills_by_key ON profile_skills (skill_key, member_id);
INSERT INTO profile_skills (member_id, skill_key)
    SELECT DISTINCT p.id, lower(btrim(s)) FROM profiles p, jsonb_array_elements_text(p.skills) s
    ON CONFLICT DO NOTHING;

-- Current companies (positions marked current) of each member.
CREATE TABLE profile_companies (
    member_id   TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    company_key TEXT COLLATE "C" NOT NULL,
    CONSTRAINT profile_companies_pkey PRIMARY KEY (member_id, company_key)
);
CREATE INDEX profile_companies_by_key ON profile_companies (company_key, member_id);
