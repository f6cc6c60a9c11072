-- School keys (every education entry) of each member: what suggestions compare, one primary-key
-- probe per candidate instead of reading and parsing the candidate's education. Keys as in
-- 0005 (rows written before this migration get lower(btrim())).
CREATE TABLE profile_schools (
    member_id  TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    school_key TEXT COLLATE "C" NOT NULL,
    CONSTRAINT profile_schools_pkey PRIMARY KEY (member_id, school_key)
);
INSERT INTO profile_schools (member_id, school_key)
    SELECT DISTINCT p.id, lower(btrim(e ->> 'school'))
    FROM profiles p, jsonb_array_elements(p.education) e
    WHERE e ->> 'school' IS NOT NULL
    ON CONFLICT DO NOTHING;
