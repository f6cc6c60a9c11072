//! A profile's fields: handles, skills, positions, education, and what an update changes.

use super::*;

/// A member handle: 3..30 characters of `a-z`, `0-9`, `_`, `-`; compared ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_start_matches('@');
        let len = raw.chars().count();
        if !(limits::HANDLE_MIN..=limits::HANDLE_MAX).contains(&len) {
            return Err(format!(
                "must be {}..{} characters, got {len}",
                limits::HANDLE_MIN,
                limits::HANDLE_MAX
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("must contain only letters a-z, digits, '_' and '-'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key handles are unique by.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Skills with duplicates (same [`canonical_key`]) merged, the first spelling kept (trimmed,
/// inner whitespace collapsed).
pub fn parse_skills(raw: &[String]) -> Result<Vec<String>, String> {
    check_count(raw.len(), limits::MAX_SKILLS)?;
    let mut skills: Vec<String> = Vec::with_capacity(raw.len());
    let mut keys: Vec<String> = Vec::with_capacity(raw.len());
    for (i, skill) in raw.iter().enumerate() {
        let skill = limits::SKILL
            .parse(skill)
            .map_err(|e| format!("[{i}] {e}"))?;
        let key = canonical_key(&skill);
        if !keys.contains(&key) {
            keys.push(key);
            skills.push(display_spelling(&skill));
        }
    }
    Ok(skills)
}

/// A month of a year.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct YearMonth {
    pub year: i32,
    pub month: i32,
}

impl YearMonth {
    pub fn parse(year: i32, month: i32) -> Result<Self, String> {
        check_year(year)?;
        if !(1..=12).contains(&month) {
            return Err(format!("month must be 1..12, got {month}"));
        }
        Ok(Self { year, month })
    }
}

fn check_year(year: i32) -> Result<(), String> {
    if !(limits::MIN_YEAR..=limits::MAX_YEAR).contains(&year) {
        return Err(format!(
            "year must be {}..{}, got {year}",
            limits::MIN_YEAR,
            limits::MAX_YEAR
        ));
    }
    Ok(())
}

/// A position, valid: start set, end (if any) not before start, no end when current.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub title: String,
    pub company: String,
    pub start: YearMonth,
    pub end: Option<YearMonth>,
    pub current: bool,
}

/// The raw parts of a position as a client sends them.
pub struct RawPosition<'a> {
    pub title: &'a str,
    pub company: &'a str,
    pub start: Option<(i32, i32)>,
    pub end: Option<(i32, i32)>,
    pub current: bool,
}

impl Position {
    /// Checks one position; violations as `(field under the position, description)`.
    pub fn parse(raw: RawPosition<'_>) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, r: Result<String, String>| match r {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push((field, e));
                None
            }
        };
        let title = check("title", limits::POSITION_TITLE.parse(raw.title));
        let company = check("company", limits::COMPANY.parse(raw.company));
        let start = match raw.start {
            None => {
                errors.push(("start", "is required".into()));
                None
            }
            Some((y, m)) => match YearMonth::parse(y, m) {
                Ok(ym) => Some(ym),
                Err(e) => {
                    errors.push(("start", e));
                    None
                }
            },
        };
        let end = match raw.end {
            None => None,
            Some((y, m)) => match YearMonth::parse(y, m) {
                Ok(ym) => Some(ym),
                Err(e) => {
                    errors.push(("end", e));
                    None
                }
            },
        };
        if raw.current && raw.end.is_some() {
            errors.push(("end", "must be unset for a current position".into()));
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                errors.push(("end", "must not be before start".into()));
            }
        }
        match (title, company, start) {
            (Some(title), Some(company), Some(start)) if errors.is_empty() => Ok(Self {
                title: display_spelling(&title),
                company: display_spelling(&company),
                start,
                end,
                current: raw.current,
            }),
            _ => Err(errors),
        }
    }
}

/// A school attended, valid. Years are 0 when unknown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Education {
    pub school: String,
    pub degree: String,
    pub field_of_study: String,
    pub start_year: i32,
    pub end_year: i32,
}

impl Education {
    /// Checks one entry; violations as `(field under the entry, description)`.
    pub fn parse(
        school: &str,
        degree: &str,
        field_of_study: &str,
        start_year: i32,
        end_year: i32,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, r: Result<String, String>| match r {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push((field, e));
                None
            }
        };
        let school = check("school", limits::SCHOOL.parse(school));
        let degree = check("degree", limits::DEGREE.parse(degree));
        let field_of_study = check(
            "field_of_study",
            limits::FIELD_OF_STUDY.parse(field_of_study),
        );
        for (field, year) in [("start_year", start_year), ("end_year", end_year)] {
            if year != 0 {
                if let Err(e) = check_year(year) {
                    errors.push((field, e));
                }
            }
        }
        if start_year != 0 && end_year != 0 && end_year < start_year {
            errors.push(("end_year", "must not be before start_year".into()));
        }
        match (school, degree, field_of_study) {
            (Some(school), Some(degree), Some(field_of_study)) if errors.is_empty() => Ok(Self {
                school: display_spelling(&school),
                degree,
                field_of_study,
                start_year,
                end_year,
            }),
            _ => Err(errors),
        }
    }
}

/// What the stores derive from a profile's fields to index it: skill and current-company keys
/// (filters, suggestions), location and industry keys (filters) and flat texts (full-text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDocument {
    pub skill_keys: Vec<String>,
    pub current_company_keys: Vec<String>,
    /// Every school of the education.
    pub school_keys: Vec<String>,
    pub location_key: String,
    pub industry_key: String,
    /// Skills joined by " · ".
    pub skills_text: String,
    /// "title · company" of every position, joined by " · ".
    pub positions_text: String,
}

impl SearchDocument {
    pub fn of(
        skills: &[String],
        positions: &[Position],
        education: &[Education],
        location: &str,
        industry: &str,
    ) -> Self {
        let mut skill_keys: Vec<String> = skills.iter().map(|s| canonical_key(s)).collect();
        skill_keys.sort();
        skill_keys.dedup();
        let mut current_company_keys: Vec<String> = positions
            .iter()
            .filter(|p| p.current)
            .map(|p| canonical_key(&p.company))
            .collect();
        current_company_keys.sort();
        current_company_keys.dedup();
        let mut school_keys: Vec<String> =
            education.iter().map(|e| canonical_key(&e.school)).collect();
        school_keys.sort();
        school_keys.dedup();
        Self {
            skill_keys,
            current_company_keys,
            school_keys,
            location_key: canonical_key(location),
            industry_key: canonical_key(industry),
            skills_text: skills.join(" · "),
            positions_text: positions
                .iter()
                .map(|p| format!("{} · {}", p.title, p.company))
                .collect::<Vec<_>>()
                .join(" · "),
        }
    }
}

/// Positions or education as stored (JSON text).
pub fn to_json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Reads stored JSON back; `what` names the column in the error.
pub fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<Vec<T>, crate::error::ProfileError> {
    serde_json::from_str(text)
        .map_err(|e| crate::error::ProfileError::corrupt(format!("{what}: {e}")))
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRecord {
    pub id: String,
    pub handle: String,
    pub display_name: String,
    pub headline: String,
    pub summary: String,
    pub location: String,
    pub industry: String,
    pub skills: Vec<String>,
    pub positions: Vec<Position>,
    pub education: Vec<Education>,
    pub open_to_work: bool,
    pub create_time: i64,
    pub update_time: i64,
    /// Derived: the rows in `connections` (read in the same statement as the profile).
    pub connection_count: i64,
    /// Derived: the members following this one.
    pub follower_count: i64,
}

/// The editable fields of a profile, all valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFields {
    pub handle: Handle,
    pub display_name: String,
    pub headline: String,
    pub summary: String,
    pub location: String,
    pub industry: String,
    pub skills: Vec<String>,
    pub positions: Vec<Position>,
    pub education: Vec<Education>,
    pub open_to_work: bool,
}

impl ProfileFields {
    pub fn search_document(&self) -> SearchDocument {
        SearchDocument::of(
            &self.skills,
            &self.positions,
            &self.education,
            &self.location,
            &self.industry,
        )
    }
}

impl ProfileRecord {
    pub fn search_document(&self) -> SearchDocument {
        SearchDocument::of(
            &self.skills,
            &self.positions,
            &self.education,
            &self.location,
            &self.industry,
        )
    }
}

/// The changes of an update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub handle: Option<Handle>,
    pub display_name: Option<String>,
    pub headline: Option<String>,
    pub summary: Option<String>,
    pub location: Option<String>,
    pub industry: Option<String>,
    pub skills: Option<Vec<String>>,
    pub positions: Option<Vec<Position>>,
    pub education: Option<Vec<Education>>,
    pub open_to_work: Option<bool>,
}

impl ProfileChanges {
    pub fn apply(self, p: &mut ProfileRecord) {
        if let Some(h) = self.handle {
            p.handle = h.0;
        }
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut p.display_name, self.display_name);
        set(&mut p.headline, self.headline);
        set(&mut p.summary, self.summary);
        set(&mut p.location, self.location);
        set(&mut p.industry, self.industry);
        if let Some(s) = self.skills {
            p.skills = s;
        }
        if let Some(v) = self.positions {
            p.positions = v;
        }
        if let Some(v) = self.education {
            p.education = v;
        }
        if let Some(v) = self.open_to_work {
            p.open_to_work = v;
        }
    }
}

/// The field-mask paths `UpdateProfile` accepts.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "handle",
    "display_name",
    "headline",
    "summary",
    "location",
    "industry",
    "skills",
    "positions",
    "education",
    "open_to_work",
];
