//! Identity: who is calling. Every request but health and reflection carries
//! `authorization: Bearer <JWT>`; one tower layer, used by every server, verifies it (signature,
//! expiry, not-before, issuer, audience), decides from the method whether members, services or
//! both may call it, and hands the handler a [`Caller`]. Handlers then apply their own rules
//! (a member acts only as themself, sees only what they may see).
//!
//! Member tokens have audience `pronet` and the member id as subject. Service tokens have
//! audience `pronet-internal` and subject `service:<name>`; services mint their own for calls
//! to other services.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::codegen::http;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

use crate::config::EnvMap;

pub const MEMBER_AUDIENCE: &str = "pronet";
pub const SERVICE_AUDIENCE: &str = "pronet-internal";
pub const DEFAULT_ISSUER: &str = "pronet";
const SERVICE_SUBJECT_PREFIX: &str = "service:";
/// File in the data dir holding the generated development secret.
pub const SECRET_FILE: &str = "jwt-secret";
/// Shortest HS256 secret accepted (bytes).
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A member, by member id.
    Member(String),
    /// Another pronet service, by name (e.g. `feed`).
    Service(String),
}

impl Caller {
    /// The calling member's id; PERMISSION_DENIED for a service (members only).
    pub fn member(&self) -> Result<&str, Status> {
        match self {
            Caller::Member(id) => Ok(id),
            Caller::Service(_) => Err(AuthError::MembersOnly.into()),
        }
    }

    /// Whose view a read takes: the calling member's, or none for a service, which sees
    /// everything.
    pub fn viewer(&self) -> Option<&str> {
        match self {
            Caller::Member(id) => Some(id),
            Caller::Service(_) => None,
        }
    }

    /// Whose view a read takes when the request may name a viewer (`viewer_id`): a member's
    /// own (naming anyone else is PERMISSION_DENIED); for a service, the member it names, or
    /// none (everything is visible) when it names nobody.
    pub fn view_for(&self, viewer_id: &str) -> Result<Option<String>, Status> {
        match self {
            Caller::Member(id) if viewer_id.is_empty() || viewer_id == id => Ok(Some(id.clone())),
            Caller::Member(_) => Err(Status::permission_denied(
                "viewer_id is for service callers",
            )),
            Caller::Service(_) if viewer_id.is_empty() => Ok(None),
            Caller::Service(_) => Ok(Some(viewer_id.to_owned())),
        }
    }

    /// Internal RPCs: PERMISSION_DENIED for a member (the auth layer refuses them already;
    /// this keeps a mis-wired server closed).
    pub fn require_service(&self) -> Result<(), Status> {
        match self {
            Caller::Member(_) => Err(AuthError::ServicesOnly.into()),
            Caller::Service(_) => Ok(()),
        }
    }

    /// A member acts (or reads) only as themself; a service for anyone.
    pub fn require_self_or_service(&self, field: &str, actor: &str) -> Result<(), Status> {
        match self {
            Caller::Member(_) => require_self(self, field, actor),
            Caller::Service(_) => Ok(()),
        }
    }
}

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health checks and reflection.
    Open,
    /// Members only (writes in a member's name).
    Member,
    /// Members and services (reads services make on a member's behalf).
    MemberOrService,
    /// Other services only (internal RPCs).
    Service,
}

/// The access every server gives the standard services; `None` for the service's own methods.
pub fn standard_access(path: &str) -> Option<Access> {
    if path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.") {
        return Some(Access::Open);
    }
    // Every service's event stream and export are for other services only.
    path.strip_prefix("/pronet.events.v1.EventService/")
        .map(|_| Access::Service)
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    iat: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The keys tokens are signed and verified with.
#[derive(Clone)]
pub struct AuthConfig {
    algorithm: Algorithm,
    decoding: DecodingKey,
    /// Absent when this process can verify but not sign (asymmetric key without private part).
    encoding: Option<EncodingKey>,
    issuer: String,
    /// SHA-256 of the signing secret (the HS256 secret or the private key), from which
    /// [`AuthConfig::derive_key`] derives keys for other purposes; absent without one.
    key_seed: Option<[u8; 32]>,
}

impl std::fmt::Debug for AuthConfig {
    // Keys are secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("can_sign", &self.encoding.is_some())
            .finish()
    }
}

impl AuthConfig {
    /// HS256 with a shared secret (development, single trust domain).
    pub fn hs256(secret: &[u8], issuer: &str) -> Result<Self, AuthConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AuthConfigError::Invalid(format!(
                "the JWT secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(Self {
            algorithm: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            issuer: issuer.to_owned(),
            key_seed: Some(sha256(secret)),
        })
    }

    /// EdDSA or RS256 with a PEM public key, and optionally the PEM private key for signing.
    pub fn asymmetric(
        algorithm: Algorithm,
        public_pem: &[u8],
        private_pem: Option<&[u8]>,
        issuer: &str,
    ) -> Result<Self, AuthConfigError> {
        let bad = |what: &str, e: jsonwebtoken::errors::Error| {
            AuthConfigError::Invalid(format!("invalid {what}: {e}"))
        };
        let (decoding, encoding) = match algorithm {
            Algorithm::EdDSA => (
                DecodingKey::from_ed_pem(public_pem).map_err(|e| bad("EdDSA public key", e))?,
                private_pem
                    .map(|p| EncodingKey::from_ed_pem(p).map_err(|e| bad("EdDSA private key", e)))
                    .transpose()?,
            ),
            Algorithm::RS256 => (
                DecodingKey::from_rsa_pem(public_pem).map_err(|e| bad("RSA public key", e))?,
                private_pem
                    .map(|p| EncodingKey::from_rsa_pem(p).map_err(|e| bad("RSA private key", e)))
                    .transpose()?,
            ),
            other => {
                return Err(AuthConfigError::Invalid(format!(
                    "unsupported algorithm {other:?}: use EdDSA or RS256"
                )))
            }
        };
        Ok(Self {
            algorithm,
            decoding,
            encoding,
            issuer: issuer.to_owned(),
            key_seed: private_pem.map(sha256),
        })
    }

    /// From the environment:
    /// - `PRONET_JWT_PUBLIC_KEY_FILE` (+ `PRONET_JWT_PRIVATE_KEY_FILE` to sign service tokens,
    ///   `PRONET_JWT_ALGORITHM` = `EdDSA` (default) or `RS256`) for production;
    /// - else `PRONET_JWT_SECRET` (HS256, at least 32 bytes) for development;
    /// - else the secret in `<data_dir>/jwt-secret`, generated there first when `generate`.
    ///
    /// `PRONET_JWT_ISSUER` overrides the issuer (`pronet`).
    pub fn from_env(
        env: &EnvMap,
        data_dir: Option<&Path>,
        generate: bool,
    ) -> Result<Self, AuthConfigError> {
        let issuer = env
            .get("PRONET_JWT_ISSUER")
            .map_or(DEFAULT_ISSUER, String::as_str);
        if let Some(public) = env.get("PRONET_JWT_PUBLIC_KEY_FILE") {
            let algorithm = match env.get("PRONET_JWT_ALGORITHM").map(String::as_str) {
                None | Some("EdDSA") => Algorithm::EdDSA,
                Some("RS256") => Algorithm::RS256,
                Some(other) => {
                    return Err(AuthConfigError::Invalid(format!(
                        "PRONET_JWT_ALGORITHM={other:?}: use EdDSA or RS256"
                    )))
                }
            };
            let public_pem = read(Path::new(public))?;
            let private_pem = env
                .get("PRONET_JWT_PRIVATE_KEY_FILE")
                .map(|p| read(Path::new(p)))
                .transpose()?;
            return Self::asymmetric(algorithm, &public_pem, private_pem.as_deref(), issuer);
        }
        if let Some(secret) = env.get("PRONET_JWT_SECRET") {
            return Self::hs256(secret.as_bytes(), issuer);
        }
        let Some(dir) = data_dir else {
            return Err(AuthConfigError::Invalid(
                "no JWT key: set PRONET_JWT_SECRET or PRONET_JWT_PUBLIC_KEY_FILE".into(),
            ));
        };
        let path = dir.join(SECRET_FILE);
        if !path.exists() {
            if !generate {
                return Err(AuthConfigError::Invalid(format!(
                    "no JWT key: set PRONET_JWT_SECRET or PRONET_JWT_PUBLIC_KEY_FILE, or run \
                     `pronet up --data-dir {}` once to generate a development secret",
                    dir.display()
                )));
            }
            write_new_secret(&path)?;
            tracing::info!(path = %path.display(), "generated a development JWT secret");
        }
        let secret = read(&path)?;
        Self::hs256(trim_ascii(&secret), issuer)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A 32-byte key for `purpose` (e.g. `pronet feed page token v1`), derived from the signing
    /// secret: the same in every replica that holds it, different per purpose, and revealing
    /// nothing of the secret. `None` for a process that cannot sign.
    pub fn derive_key(&self, purpose: &str) -> Option<[u8; 32]> {
        self.key_seed.map(|seed| mac(&seed, purpose.as_bytes()))
    }

    /// Whether this process can sign tokens.
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    fn sign(&self, subject: &str, audience: &str, ttl: Duration) -> Result<String, String> {
        let key = self
            .encoding
            .as_ref()
            .ok_or("no private key to sign tokens with (PRONET_JWT_PRIVATE_KEY_FILE)")?;
        let now = unix_now();
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            exp: now + ttl.as_secs().max(1),
            nbf: Some(now.saturating_sub(1)),
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| format!("cannot sign token: {e}"))
    }

    /// A token that lets its holder act as `member_id`.
    pub fn member_token(&self, member_id: &str, ttl: Duration) -> Result<String, String> {
        self.sign(member_id, MEMBER_AUDIENCE, ttl)
    }

    /// A token for service `name` calling other services.
    pub fn service_token(&self, name: &str, ttl: Duration) -> Result<String, String> {
        self.sign(
            &format!("{SERVICE_SUBJECT_PREFIX}{name}"),
            SERVICE_AUDIENCE,
            ttl,
        )
    }

    /// Verifies a bearer token and says who it belongs to.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[MEMBER_AUDIENCE, SERVICE_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AuthError::InvalidToken)?;
        let claims = data.claims;
        match claims.aud.as_str() {
            SERVICE_AUDIENCE => claims
                .sub
                .strip_prefix(SERVICE_SUBJECT_PREFIX)
                .filter(|name| !name.is_empty())
                .map(|name| Caller::Service(name.to_owned()))
                .ok_or(AuthError::InvalidToken),
            MEMBER_AUDIENCE => crate::ids::parse_id(&claims.sub)
                .map(Caller::Member)
                .map_err(|_| AuthError::InvalidToken),
            _ => Err(AuthError::InvalidToken),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, AuthConfigError> {
    std::fs::read(path).map_err(|source| AuthConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn write_new_secret(path: &Path) -> Result<(), AuthConfigError> {
    let io = |source| AuthConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthConfigError::Invalid(format!("no randomness for a secret: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(hex.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a request was not authenticated or not allowed. The messages are the same whatever the
/// token or member, so they reveal nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("this method is for members only")]
    MembersOnly,
    #[error("this method is for pronet services only")]
    ServicesOnly,
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::MissingToken | AuthError::InvalidToken => {
                Status::unauthenticated(err.to_string())
            }
            AuthError::MembersOnly | AuthError::ServicesOnly => {
                Status::permission_denied(err.to_string())
            }
        }
    }
}

/// Decides a request's caller from its path and `authorization` header.
pub fn authorize(
    config: &AuthConfig,
    access: Access,
    authorization: Option<&str>,
) -> Result<Option<Caller>, AuthError> {
    if access == Access::Open {
        return Ok(None);
    }
    let token = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::MissingToken)?;
    let caller = config.verify(token)?;
    match (access, &caller) {
        (Access::Member, Caller::Service(_)) => Err(AuthError::MembersOnly),
        (Access::Service, Caller::Member(_)) => Err(AuthError::ServicesOnly),
        _ => Ok(Some(caller)),
    }
}

/// The caller the auth layer put on a request; UNAUTHENTICATED if there is none (a handler
/// reached without the layer is a wiring bug, and must not pass as anyone).
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated(AuthError::MissingToken.to_string()))
}

/// Checks that an actor field names the calling member. Services may not act as members.
pub fn require_self(caller: &Caller, field: &str, actor: &str) -> Result<(), Status> {
    match caller {
        Caller::Member(id) if id == actor => Ok(()),
        Caller::Member(_) => Err(Status::permission_denied(format!(
            "{field} must be the caller's own member id"
        ))),
        Caller::Service(_) => Err(Status::permission_denied(
            "this method is for members only".to_string(),
        )),
    }
}

/// The method's access rule.
pub type AccessFn = fn(&str) -> Access;

/// The method name of a gRPC `path` (`/package.Service/Method`) when it names a method of
/// `service`; `None` for anything else.
pub fn method_of<'a>(path: &'a str, service: &str) -> Option<&'a str> {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(service))
        .and_then(|p| p.strip_prefix('/'))
        .filter(|m| !m.is_empty() && !m.contains('/'))
}

/// The tower layer that authenticates every call of a server.
#[derive(Clone)]
pub struct AuthLayer {
    config: Arc<AuthConfig>,
    access: AccessFn,
}

impl AuthLayer {
    pub fn new(config: Arc<AuthConfig>, access: AccessFn) -> Self {
        Self { config, access }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let access = standard_access(path).unwrap_or_else(|| (self.layer.access)(path));
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match authorize(&self.layer.config, access, header) {
            Ok(Some(caller)) => {
                req.extensions_mut().insert(caller);
            }
            Ok(None) => {}
            Err(err) => {
                let status: Status = err.into();
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        // The readied service handles this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(req))
    }
}

/// A cached `authorization` header value and when to renew it (seconds since the epoch).
type CachedHeader = Option<(MetadataValue<tonic::metadata::Ascii>, u64)>;

/// Service credentials for calls to other services: a service token, renewed before it expires,
/// attached to every request by [`ServiceCredentials::attach`] (a tonic interceptor).
#[derive(Clone)]
pub struct ServiceCredentials {
    config: Arc<AuthConfig>,
    name: &'static str,
    cached: Arc<Mutex<CachedHeader>>,
}

/// Lifetime of a service token; renewed when less than half is left.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(3600);

impl ServiceCredentials {
    pub fn new(config: Arc<AuthConfig>, name: &'static str) -> Self {
        Self {
            config,
            name,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    fn header(&self) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
        let now = unix_now();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((value, renew_at)) = cached.as_ref() {
            if now < *renew_at {
                return Ok(value.clone());
            }
        }
        let token = self
            .config
            .service_token(self.name, SERVICE_TOKEN_TTL)
            .map_err(|e| crate::error::internal("cannot mint a service token", e))?;
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|e| crate::error::internal("service token is not ascii", e))?;
        *cached = Some((value.clone(), now + SERVICE_TOKEN_TTL.as_secs() / 2));
        Ok(value)
    }

    /// Adds the service token to an outgoing request.
    pub fn attach(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self.header()?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// A tonic interceptor carrying [`ServiceCredentials`].
#[derive(Clone)]
pub struct ServiceAuth(pub ServiceCredentials);

impl ServiceAuth {
    /// Calls carrying a service token named `name`, signed with `auth`.
    pub fn new(auth: std::sync::Arc<AuthConfig>, name: &'static str) -> Self {
        Self(ServiceCredentials::new(auth, name))
    }
}

impl tonic::service::Interceptor for ServiceAuth {
    /// Attaches the service token, passes the current call's remaining budget on (see
    /// [`crate::deadline`]: the callee gets it as `grpc-timeout` and the channel gives up
    /// when it passes) and the trace context (`traceparent`, see [`crate::telemetry`]).
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(budget) = crate::deadline::outgoing_budget()? {
            request.set_timeout(budget);
        }
        crate::telemetry::inject(request.metadata_mut());
        self.0.attach(request)
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// HMAC-SHA256 of `data` under `key`.
pub fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Whether `tag` (at least 16 bytes) is the start of the HMAC-SHA256 of `data` under `key`,
/// compared in constant time.
pub fn verify_mac(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    use hmac::Mac;
    if tag.len() < 16 {
        return false;
    }
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    m.update(data);
    m.verify_truncated_left(tag).is_ok()
}

/// Adds a member's bearer token to a request (clients, tests, the demo).
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig::hs256(&[7u8; 32], DEFAULT_ISSUER).unwrap()
    }

    #[test]
    fn member_and_service_tokens_verify_as_what_they_are() {
        let c = config();
        let t = c.member_token("ada", Duration::from_secs(60)).unwrap();
        assert_eq!(c.verify(&t).unwrap(), Caller::Member("ada".into()));
        let s = c.service_token("feed", Duration::from_secs(60)).unwrap();
        assert_eq!(c.verify(&s).unwrap(), Caller::Service("feed".into()));
    }

    #[test]
    fn refuses_bad_signature_issuer_expiry_and_garbage() {
        let c = config();
        let other = AuthConfig::hs256(&[8u8; 32], DEFAULT_ISSUER).unwrap();
        let t = other.member_token("ada", Duration::from_secs(60)).unwrap();
        assert_eq!(c.verify(&t), Err(AuthError::InvalidToken));
        let foreign = AuthConfig::hs256(&[7u8; 32], "someone-else").unwrap();
        let t = foreign
            .member_token("ada", Duration::from_secs(60))
            .unwrap();
        assert_eq!(c.verify(&t), Err(AuthError::InvalidToken));
        assert_eq!(c.verify("a.b.c"), Err(AuthError::InvalidToken));
        let expired = Claims {
            sub: "ada".into(),
            iss: DEFAULT_ISSUER.into(),
            aud: MEMBER_AUDIENCE.into(),
            exp: unix_now() - 3600,
            nbf: None,
            iat: unix_now() - 7200,
        };
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(c.verify(&t), Err(AuthError::InvalidToken));
        let future = Claims {
            nbf: Some(unix_now() + 3600),
            exp: unix_now() + 7200,
            iat: unix_now(),
            ..expired
        };
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &future,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(c.verify(&t), Err(AuthError::InvalidToken));
    }

    #[test]
    fn access_rules_map_to_codes() {
        let c = config();
        let member = format!(
            "Bearer {}",
            c.member_token("ada", Duration::from_secs(60)).unwrap()
        );
        let service = format!(
            "Bearer {}",
            c.service_token("feed", Duration::from_secs(60)).unwrap()
        );
        assert_eq!(authorize(&c, Access::Open, None), Ok(None));
        assert_eq!(
            authorize(&c, Access::Member, None),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            authorize(&c, Access::Member, Some("Basic abc")),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            authorize(&c, Access::Member, Some(&service)),
            Err(AuthError::MembersOnly)
        );
        assert_eq!(
            authorize(&c, Access::Service, Some(&member)),
            Err(AuthError::ServicesOnly)
        );
        assert_eq!(
            authorize(&c, Access::MemberOrService, Some(&member)),
            Ok(Some(Caller::Member("ada".into())))
        );
    }

    #[test]
    fn secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let env = EnvMap::new();
        assert!(AuthConfig::from_env(&env, Some(dir.path()), false).is_err());
        let a = AuthConfig::from_env(&env, Some(dir.path()), true).unwrap();
        let b = AuthConfig::from_env(&env, Some(dir.path()), false).unwrap();
        let t = a.member_token("ada", Duration::from_secs(60)).unwrap();
        assert_eq!(b.verify(&t).unwrap(), Caller::Member("ada".into()));
        let short: EnvMap = [("PRONET_JWT_SECRET".to_string(), "short".to_string())].into();
        assert!(AuthConfig::from_env(&short, None, false).is_err());
    }

    #[test]
    fn eddsa_keys_sign_and_verify() {
        // A throwaway Ed25519 key pair made with `openssl genpkey -algorithm ed25519`.
        let private = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINeAm3yV2VWVixcUBpZKIpY2VlbBQPnerdh+6LxOTC+T\n-----END PRIVATE KEY-----\n";
        let public = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6gb5SBx76a7N9sgVQNzO1GOsBmqqXy/hSKp9N4cU6TM=\n-----END PUBLIC KEY-----\n";
        let signer =
            AuthConfig::asymmetric(Algorithm::EdDSA, public, Some(private), DEFAULT_ISSUER)
                .unwrap();
        let verifier =
            AuthConfig::asymmetric(Algorithm::EdDSA, public, None, DEFAULT_ISSUER).unwrap();
        assert!(!verifier.can_sign());
        let t = signer.member_token("ada", Duration::from_secs(60)).unwrap();
        assert_eq!(verifier.verify(&t).unwrap(), Caller::Member("ada".into()));
    }
}
