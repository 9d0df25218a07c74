//! The edge's authentication: which requests need a bearer token, how the token is read, and how
//! the set's auth service turns it into the identity the callee finds in its [`Ctx`].
//!
//! Decided here, once, for every party that runs an edge: the HTTP listener (the token from the
//! `Authorization` header), and the test toolkit's in-process edge (the token a test hands it),
//! so a business-logic test sees exactly the answers a client of the server gets.

use std::fmt;
use std::sync::Arc;

use nano::{AnyRequest, AnyResponse, Ctx, NanoError, Request, ServiceSet, codes as nano_codes};

use crate::codes;

/// The metadata key an admitted call carries its authenticated user under, unless
/// [`EdgeAuth::identity_key`] names another.
pub const DEFAULT_IDENTITY_KEY: &str = "user";

/// The longest bearer token an edge accepts, in bytes; a longer one is refused without asking
/// the auth service.
pub const MAX_TOKEN_LEN: usize = 4096;

/// What an edge asks the auth service about one call: whether `token` may call `request` (a
/// wire name) of `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthQuery {
    /// The bearer token, as the caller sent it.
    pub token: String,
    /// The service the call is for.
    pub service: String,
    /// The wire name of the request type the call is for.
    pub request: String,
}

type Ask = dyn Fn(AuthQuery) -> AnyRequest + Send + Sync;
type Identify = dyn Fn(AnyResponse) -> Result<String, NanoError> + Send + Sync;

/// How an edge authenticates calls: the service of the set that verifies bearer tokens, the
/// request that asks it (a request type the auth service declares, made from an [`AuthQuery`]),
/// how the identity is read from its answer, and which request types are protected.
///
/// A call of a protected request type is admitted only with a bearer token the auth service
/// accepts; the callee then finds the identity in its context's metadata (key
/// [`DEFAULT_IDENTITY_KEY`] unless [`identity_key`](EdgeAuth::identity_key) says otherwise).
/// Every other request type passes without a token, and the edge does not look at one.
///
/// | the call | the answer |
/// |---|---|
/// | no `Authorization`, an empty one, more than one, or one that is not `Bearer <token>` | `C-UNAUTHORIZED`, without asking the auth service |
/// | the auth service refuses the token (`C-UNAUTHORIZED`, or any other `C-…` code) | `C-UNAUTHORIZED` |
/// | the auth service accepts the token but not for this call (`C-FORBIDDEN`) | `C-FORBIDDEN` |
/// | the auth service fails (a server-side code) | that error: the caller did nothing wrong |
/// | the auth service answers an identity | the call, with the identity in its metadata |
///
/// The auth service is called directly, not through the set's client hooks, so the check is no
/// call of the request tree: recordings, traces and simulated faults see the admitted call only.
///
/// An HTTP edge sends every `401` with the `WWW-Authenticate` challenge [`bearer_challenge`]
/// makes of the same header values.
///
/// ```
/// use nano::{Ctx, NanoError, ServiceSet};
/// use nano_wire::{AuthQuery, EdgeAuth};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// pub struct Verify { pub token: String }
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// pub struct Verified { pub user: String }
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// pub struct WhoAmI {}
/// mod auth { nano::api! { service "auth"; fn verify(super::Verify) -> super::Verified = "auth.Verify"; } }
/// mod front { nano::api! { service "front"; fn who(super::WhoAmI) -> super::Verified = "front.WhoAmI"; } }
///
/// struct Auth;
/// impl auth::Handler for Auth {
///     async fn verify(&self, _: &Ctx, r: Verify) -> Result<Verified, NanoError> {
///         match r.token.as_str() {
///             "good" => Ok(Verified { user: "ada".into() }),
///             _ => Err(NanoError::new(nano_wire::codes::UNAUTHORIZED, "unknown token")),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let set = ServiceSet::builder().service(auth::service(|_| Ok(Auth))).build()?;
/// let edge = EdgeAuth::new(
///     auth::NAME,
///     |query: AuthQuery| Verify { token: query.token },
///     |verified: Verified| verified.user,
/// )
/// .protect::<WhoAmI>();
///
/// let admitted = edge.admit(&set, Ctx::new(), "front", "front.WhoAmI", &[b"Bearer good"]).await?;
/// assert_eq!(admitted.metadata("user"), Some("ada"));
/// let refused = edge.admit(&set, Ctx::new(), "front", "front.WhoAmI", &[]).await.unwrap_err();
/// assert_eq!(refused.code(), "C-UNAUTHORIZED");
/// let refused = edge.admit(&set, Ctx::new(), "front", "front.WhoAmI", &[b"Bearer bad"]).await.unwrap_err();
/// assert_eq!(refused.to_string(), "unknown token");
/// let twice: &[&[u8]] = &[b"Bearer good", b"Bearer bad"];
/// let refused = edge.admit(&set, Ctx::new(), "front", "front.WhoAmI", twice).await.unwrap_err();
/// assert_eq!(refused.to_string(), "more than one Authorization header");
/// // Not protected: no token needed, none looked at.
/// edge.admit(&set, Ctx::new(), "front", "front.Other", &[]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EdgeAuth {
    service: String,
    protected: Vec<&'static str>,
    identity_key: String,
    ask: Arc<Ask>,
    identify: Arc<Identify>,
}

impl EdgeAuth {
    /// An edge that asks the service `service` with the request `ask` makes of an [`AuthQuery`],
    /// and reads the identity from its answer with `identify`. Nothing is protected yet: see
    /// [`protect`](EdgeAuth::protect).
    pub fn new<R: Request>(
        service: impl Into<String>,
        ask: impl Fn(AuthQuery) -> R + Send + Sync + 'static,
        identify: impl Fn(R::Response) -> String + Send + Sync + 'static,
    ) -> Self {
        let identify = move |response: AnyResponse| match response.downcast::<R::Response>() {
            Ok(response) => Ok(identify(response)),
            Err(other) => Err(NanoError::new(
                nano_codes::BAD_RESPONSE,
                format!(
                    "the auth service answered {} with a {}",
                    R::NAME,
                    other.type_name()
                ),
            )),
        };
        EdgeAuth {
            service: service.into(),
            protected: Vec::new(),
            identity_key: DEFAULT_IDENTITY_KEY.to_owned(),
            ask: Arc::new(move |query| AnyRequest::new(ask(query))),
            identify: Arc::new(identify),
        }
    }

    /// Protects the request type `R`: a call of it needs a bearer token the auth service
    /// accepts. Named by type, so a misspelt name cannot leave an endpoint open.
    #[must_use]
    pub fn protect<R: Request>(mut self) -> Self {
        if !self.protected.contains(&R::NAME) {
            self.protected.push(R::NAME);
        }
        self
    }

    /// Sets the metadata key the identity is put under (default [`DEFAULT_IDENTITY_KEY`]).
    #[must_use]
    pub fn identity_key(mut self, key: impl Into<String>) -> Self {
        self.identity_key = key.into();
        self
    }

    /// The name of the service that verifies tokens.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The metadata key an admitted call carries its identity under.
    pub fn key(&self) -> &str {
        &self.identity_key
    }

    /// The wire names of the protected request types, in the order they were protected.
    pub fn protected(&self) -> &[&'static str] {
        &self.protected
    }

    /// Whether calls of `request` (a wire name) need a token.
    pub fn is_protected(&self, request: &str) -> bool {
        self.protected.contains(&request)
    }

    /// Admits a call of `request` (a wire name) to `service` that arrived with the
    /// `Authorization` values `authorization` (one per header, in the order they came; empty
    /// when there was none): `ctx` unchanged for a request type that is not protected, `ctx`
    /// with the identity in its metadata for one whose single bearer token the auth service of
    /// `set` accepts. More than one value is refused whatever they say: parties that read only
    /// the first or only the last of them (a proxy, a log, this edge) would disagree about who
    /// is calling.
    ///
    /// # Errors
    ///
    /// `C-UNAUTHORIZED`, `C-FORBIDDEN` or the auth service's own failure, as the table on
    /// [`EdgeAuth`] says; `S-UNKNOWN-SERVICE` when `set` has no auth service.
    pub async fn admit(
        &self,
        set: &ServiceSet,
        ctx: Ctx,
        service: &str,
        request: &str,
        authorization: &[&[u8]],
    ) -> Result<Ctx, NanoError> {
        if !self.is_protected(request) {
            return Ok(ctx);
        }
        let token = bearer_token(single(authorization)?)?;
        let auth = set.service(&self.service).ok_or_else(|| self.missing())?;
        let query = AuthQuery {
            token: token.to_owned(),
            service: service.to_owned(),
            request: request.to_owned(),
        };
        let answer = auth.handle(ctx.clone(), (self.ask)(query)).await;
        let user = match answer {
            Ok(response) => (self.identify)(response)?,
            Err(err) => return Err(refusal(err)),
        };
        if user.is_empty() {
            return Err(NanoError::new(
                codes::UNAUTHORIZED,
                "the auth service accepted the token but named no user",
            ));
        }
        Ok(ctx.with_metadata(self.identity_key.clone(), user))
    }

    fn missing(&self) -> NanoError {
        NanoError::new(
            nano_codes::UNKNOWN_SERVICE,
            format!(
                "the edge authenticates with service {:?}, which is not in the set",
                self.service
            ),
        )
    }
}

/// What the caller is told when the auth service did not answer an identity: its refusals as
/// they are (`C-FORBIDDEN` stays forbidden), any other client-side code as `C-UNAUTHORIZED`
/// (the token is what the caller sent), a failure of the service as that failure.
fn refusal(err: NanoError) -> NanoError {
    if err.has_code(codes::UNAUTHORIZED) || err.has_code(codes::FORBIDDEN) {
        err
    } else if err.is_client_error() {
        NanoError::wrap(err, "the token was refused").with_code(codes::UNAUTHORIZED)
    } else {
        NanoError::wrap(err, "cannot authenticate the request")
    }
}

/// The one `Authorization` value of a call (`None` when it has none).
fn single<'v>(authorization: &[&'v [u8]]) -> Result<Option<&'v [u8]>, NanoError> {
    match authorization {
        [] => Ok(None),
        [value] => Ok(Some(value)),
        _ => Err(NanoError::new(
            codes::UNAUTHORIZED,
            "more than one Authorization header",
        )),
    }
}

/// The `WWW-Authenticate` value of a `401` answer to a call that came with the `Authorization`
/// values `authorization` (RFC 6750, section 3): `Bearer realm="nano"` when it sent no token,
/// with `error="invalid_request"` added when what it sent is no single bearer token (more than
/// one header, another scheme, a malformed token), and with `error="invalid_token"` when its
/// token was well-formed but not accepted. Like [`bearer_token`] it never repeats the value.
///
/// ```
/// use nano_wire::bearer_challenge;
///
/// assert_eq!(bearer_challenge(&[]), r#"Bearer realm="nano""#);
/// assert_eq!(bearer_challenge(&[b""]), r#"Bearer realm="nano""#);
/// assert_eq!(bearer_challenge(&[b"Basic abc"]), r#"Bearer realm="nano", error="invalid_request""#);
/// assert_eq!(bearer_challenge(&[b"Bearer abc"]), r#"Bearer realm="nano", error="invalid_token""#);
/// ```
pub fn bearer_challenge(authorization: &[&[u8]]) -> &'static str {
    match single(authorization) {
        Ok(None | Some(b"")) => r#"Bearer realm="nano""#,
        Ok(value) if bearer_token(value).is_ok() => r#"Bearer realm="nano", error="invalid_token""#,
        _ => r#"Bearer realm="nano", error="invalid_request""#,
    }
}

/// The token of an `Authorization` value of the form `Bearer <token>` (RFC 6750: the scheme in
/// any case, then one space, then 1 to [`MAX_TOKEN_LEN`] of `A-Z a-z 0-9 - . _ ~ + /` followed by
/// any `=`). The value is never repeated in an error: it may be a secret.
///
/// ```
/// use nano_wire::bearer_token;
///
/// assert_eq!(bearer_token(Some(b"Bearer abc.def")).unwrap(), "abc.def");
/// assert_eq!(bearer_token(Some(b"bearer abc")).unwrap(), "abc");
/// assert_eq!(bearer_token(None).unwrap_err().code(), "C-UNAUTHORIZED");
/// let err = bearer_token(Some(b"Basic c2VjcmV0")).unwrap_err();
/// assert!(!err.message().contains("c2VjcmV0"));
/// ```
///
/// # Errors
///
/// `C-UNAUTHORIZED` when there is no value, it is empty, or it is not a bearer token.
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, NanoError> {
    let Some(value) = authorization else {
        return Err(NanoError::new(
            codes::UNAUTHORIZED,
            "this request needs a bearer token (Authorization: Bearer <token>)",
        ));
    };
    if value.is_empty() {
        return Err(NanoError::new(
            codes::UNAUTHORIZED,
            "the Authorization header is empty: this request needs a bearer token (Authorization: Bearer <token>)",
        ));
    }
    let malformed = |why: &str| {
        NanoError::new(
            codes::UNAUTHORIZED,
            format!("the Authorization header is not `Bearer <token>`: {why}"),
        )
    };
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(malformed("another scheme"));
    }
    if token.is_empty() {
        return Err(malformed("no token"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed(&format!(
            "the token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    let valid = body_len > 0
        && token[..body_len].iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !valid {
        return Err(malformed(
            "the token has characters a bearer token cannot have",
        ));
    }
    // Checked above: ASCII only.
    std::str::from_utf8(token).map_err(|_| malformed("not ASCII"))
}

impl fmt::Debug for EdgeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeAuth")
            .field("service", &self.service)
            .field("protected", &self.protected)
            .field("identity_key", &self.identity_key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_by_the_rfc() {
        let ok = |v: &[u8]| bearer_token(Some(v)).map(str::to_owned);
        assert_eq!(ok(b"Bearer a-b.c_d~e+f/g==").unwrap(), "a-b.c_d~e+f/g==");
        assert_eq!(ok(b"BEARER x").unwrap(), "x");
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer  x",
            b"Bearer x y",
            b"Bearer ==",
            b"Bearer x\xff",
            b"Token x",
            b"",
        ] {
            let err = bearer_token(Some(bad)).unwrap_err();
            assert_eq!(err.code(), codes::UNAUTHORIZED, "{bad:?}");
        }
        let empty = bearer_token(Some(b"")).unwrap_err();
        assert!(empty.message().contains("is empty"), "{empty}");
        assert!(!empty.message().contains("another scheme"), "{empty}");
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        let err = bearer_token(Some(long.as_bytes())).unwrap_err();
        assert!(err.message().contains("longer"), "{err}");
        let exact = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN));
        assert!(bearer_token(Some(exact.as_bytes())).is_ok());
    }

    #[test]
    fn one_value_at_most_and_challenges_by_what_came() {
        assert_eq!(single(&[]).unwrap(), None);
        assert_eq!(single(&[b"Bearer x"]).unwrap(), Some(&b"Bearer x"[..]));
        let twice = single(&[b"Bearer x", b"Bearer x"]).unwrap_err();
        assert_eq!(twice.code(), codes::UNAUTHORIZED);
        assert_eq!(twice.message(), "more than one Authorization header");
        let invalid_request = r#"Bearer realm="nano", error="invalid_request""#;
        assert_eq!(
            bearer_challenge(&[b"Bearer x", b"Bearer y"]),
            invalid_request
        );
        assert_eq!(bearer_challenge(&[b"Bearer", b""]), invalid_request);
        assert_eq!(bearer_challenge(&[b"Bearer x y"]), invalid_request);
        assert_eq!(
            bearer_challenge(&[b"Bearer x"]),
            r#"Bearer realm="nano", error="invalid_token""#
        );
    }

    #[test]
    fn refusals_keep_forbidden_and_server_failures() {
        let forbidden = refusal(NanoError::new(codes::FORBIDDEN, "no"));
        assert_eq!(forbidden.code(), codes::FORBIDDEN);
        let other = refusal(NanoError::bad_request("garbled"));
        assert_eq!(other.code(), codes::UNAUTHORIZED);
        assert_eq!(other.to_string(), "the token was refused :: garbled");
        let down = refusal(NanoError::unavailable("auth is down"));
        assert_eq!(down.code(), nano_codes::UNAVAILABLE);
    }
}
