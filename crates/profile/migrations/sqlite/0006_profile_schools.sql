-- School keys (every education entry) of each member: what suggestions compare, one primary-key
-- probe per candidate instead of reading and parsing the candidate's education. Keys as in
-- 0005 (rows written before this migration get SQLite's ASCII lower(trim())).
CREATE TABLE profile_schools (
    member_id  TEXT NOT NULL REFERENCES profiles (id),
    school_key TEXT NOT NULL,
    PRIMARY KEY (member_id, school_key)
) WITHOUT ROWID;
INSERT OR IGNORE INTO profile_schools (member_id, school_key)
    SELECT p.id, lower(trim(json_extract(j.value, '$.school')))
    FROM profiles p, json_each(p.education) j
    WHERE json_extract(j.value, '$.school') IS NOT NULL;
