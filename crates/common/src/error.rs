//! Mapping errors to gRPC statuses: field violations become one INVALID_ARGUMENT carrying a
//! `google.rpc.BadRequest`; internal errors are logged and reach the client as a bare INTERNAL.

use std::fmt::Display;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Most violations listed in one status: the rest are counted. Errors travel in HTTP/2
/// headers, and a request with thousands of bad ids must not produce a response too big to send.
pub const MAX_LISTED_VIOLATIONS: usize = 20;
/// Longest field path or description kept, in characters.
const MAX_VIOLATION_CHARS: usize = 200;

/// Collects every field violation of a request so the client learns of all of them at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations {
    violations: Vec<(String, String)>,
    unlisted: usize,
}

fn clip(text: String) -> String {
    match text.char_indices().nth(MAX_VIOLATION_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.violations.len() < MAX_LISTED_VIOLATIONS {
            self.violations
                .push((clip(field.into()), clip(description.into())));
        } else {
            self.unlisted += 1;
        }
    }

    /// Keeps the value of a parse, or records its error under `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(why) => {
                self.add(field, why);
                None
            }
        }
    }

    /// An optional field, where empty means absent: `None` when empty or invalid (recorded).
    pub fn optional<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match raw {
            "" => None,
            raw => self.check(field, parse(raw)),
        }
    }

    /// A request's `page_size` (see [`crate::pagination::page_size`]), recorded under
    /// `page_size` when negative.
    pub fn page_size(&mut self, raw: i32, default: usize, max: usize) -> Option<usize> {
        self.check("page_size", crate::pagination::page_size(raw, default, max))
    }

    /// Ends a request's parse: every parsed value when nothing was recorded, else the
    /// violations. `parsed` is one `Option` or a tuple of them, as [`Self::check`] left them.
    pub fn finish<P: Parsed>(self, parsed: P) -> Result<P::Values, FieldViolations> {
        match parsed.all() {
            Some(values) if self.is_empty() => Ok(values),
            _ => Err(self),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn len(&self) -> usize {
        self.violations.len() + self.unlisted
    }

    /// `Ok(())` when nothing was recorded, else the INVALID_ARGUMENT status.
    pub fn into_result(self) -> Result<(), Status> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_status())
        }
    }

    /// The INVALID_ARGUMENT status; its message names the fields, its details hold them all.
    pub fn into_status(mut self) -> Status {
        if self.unlisted > 0 {
            let more = format!("{} more violations not listed", self.unlisted);
            self.violations.push(("request".into(), more));
        }
        let message = self
            .violations
            .iter()
            .map(|(field, why)| format!("{field}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        let violations: Vec<FieldViolation> = self
            .violations
            .into_iter()
            .map(|(field, why)| FieldViolation::new(field, why))
            .collect();
        Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(violations),
        )
    }
}

impl From<FieldViolations> for Status {
    fn from(v: FieldViolations) -> Self {
        v.into_status()
    }
}

/// The values [`FieldViolations::check`] returned for a request's fields: one `Option`, or a
/// tuple of them; all present is the parsed request.
pub trait Parsed {
    type Values;
    fn all(self) -> Option<Self::Values>;
}

impl<A> Parsed for Option<A> {
    type Values = A;
    fn all(self) -> Option<A> {
        self
    }
}

macro_rules! parsed_tuple {
    ($($t:ident),+) => {
        impl<$($t),+> Parsed for ($(Option<$t>,)+) {
            type Values = ($($t,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Values> {
                let ($($t,)+) = self;
                Some(($($t?,)+))
            }
        }
    };
}
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);
parsed_tuple!(A, B, C, D, E, F, G);
parsed_tuple!(A, B, C, D, E, F, G, H);

/// A single-field INVALID_ARGUMENT.
pub fn invalid_field(field: &str, why: impl Into<String>) -> Status {
    let mut v = FieldViolations::new();
    v.add(field, why);
    v.into_status()
}

/// FAILED_PRECONDITION with an `ErrorInfo` whose UPPER_SNAKE `reason` a client branches on.
pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        message,
        ErrorDetails::with_error_info(reason, "pronet", std::collections::HashMap::new()),
    )
}

/// Logs an internal failure with its detail and returns a status that reveals none of it.
pub fn internal(context: &str, err: impl Display) -> Status {
    tracing::error!(error = %err, "{context}");
    Status::internal("internal error")
}

/// What a service's handlers and store fail with: all of post's and engagement's errors, and
/// the storage side of profile's; the one place it becomes a gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A service we depend on failed; boxed because a `Status` is large.
    #[error("{dependency} service call failed: {status}")]
    Dependency {
        dependency: &'static str,
        status: Box<Status>,
    },
    #[error("storage failure: {0}")]
    Storage(#[from] sqlx::Error),
    /// A failed write on the embedded store (its writer runs on rusqlite).
    #[error("storage failure: {0}")]
    Write(#[from] rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A member holds as many of something as they may (the message says what and how to go
    /// on).
    #[error("{0}")]
    LimitReached(String),
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(_) => Status::not_found(err.to_string()),
            ServiceError::LimitReached(_) => Status::resource_exhausted(err.to_string()),
            ServiceError::Dependency { dependency, status } => {
                crate::upstream::dependency_failed(dependency, *status)
            }
            ServiceError::Storage(_) | ServiceError::Write(_) | ServiceError::Corrupt(_) => {
                internal("store failed", err)
            }
        }
    }
}

impl ServiceError {
    /// How a failed call to the `dependency` service becomes this error (for `map_err`).
    pub fn dependency(dependency: &'static str) -> impl Fn(Status) -> Self {
        move |status| Self::Dependency {
            dependency,
            status: Box::new(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_missing_thing() {
        let status = Status::from(ServiceError::NotFound("post"));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "post not found");
    }

    #[test]
    fn a_down_dependency_is_unavailable_and_names_the_service() {
        let down = ServiceError::dependency("profile");
        let status = Status::from(down(Status::unavailable("tcp connect error")));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "profile service unavailable");
    }

    #[test]
    fn storage_detail_stays_hidden_and_limits_are_resource_exhausted() {
        let status = Status::from(ServiceError::Corrupt("reaction type 9 at /data".into()));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let status = Status::from(ServiceError::LimitReached("1000 muted hashtags".into()));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "1000 muted hashtags");
    }

    #[test]
    fn finish_yields_the_values_only_when_every_field_parsed() {
        let mut v = FieldViolations::new();
        let id = v.check("id", Ok::<_, String>("a"));
        let size = v.page_size(0, 20, 100);
        assert_eq!(v.finish((id, size)), Ok(("a", 20)));

        let mut v = FieldViolations::new();
        let id = v.check("id", Ok::<_, String>("a"));
        let size = v.page_size(-1, 20, 100);
        let err = v.finish((id, size)).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(Status::from(err).message().contains("page_size"));

        // A violation recorded with `add` fails the parse even when every value is present.
        let mut v = FieldViolations::new();
        let id = v.check("id", Ok::<_, String>(7));
        v.add("target", "set one of followee_id or hashtag");
        assert_eq!(v.finish(id).unwrap_err().len(), 1);
    }

    #[test]
    fn all_violations_reach_the_status_details() {
        let mut v = FieldViolations::new();
        v.add("profile.handle", "must not be empty");
        v.add("profile.display_name", "too long");
        let status = v.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("profile.handle"));
        let bad = status
            .get_details_bad_request()
            .expect("bad request details");
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["profile.handle", "profile.display_name"]);
    }

    #[test]
    fn thousands_of_violations_stay_small() {
        let mut v = FieldViolations::new();
        for i in 0..5000 {
            v.add(format!("ids[{i}]"), "x".repeat(10_000));
        }
        assert_eq!(v.len(), 5000);
        let status = v.into_status();
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), MAX_LISTED_VIOLATIONS + 1);
        assert_eq!(
            bad.field_violations.last().unwrap().description,
            "4980 more violations not listed"
        );
        assert!(status.message().len() < 10_000);
    }

    #[test]
    fn internal_hides_the_detail() {
        let status = internal("store failed", "disk I/O error at /secret/path");
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
