//! `auth`: issues and verifies the bearer tokens of the sign-up system.
//!
//! A token is `v1.<user id>.<scope>.<expiry>.<signature>`: the expiry in seconds since the Unix
//! epoch, the signature the HMAC-SHA256 of everything before it under the token secret, in
//! lowercase hex. Nothing is stored: any process with the secret verifies any token it issued.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nano::{Ctx, NanoError, NewService};
use nano_wire::codes::{FORBIDDEN, UNAUTHORIZED};
use nano_wire::{AuthQuery, EdgeAuth};
use ring::hmac;

use crate::api::auth::{self, Identity, Issue, Issued, Verify};
use crate::api::signup::{Stats, WhoAmI};

/// The environment variable with the token secret.
pub const SECRET_ENV: &str = "SIGNUP_TOKEN_SECRET";
/// How long a token is good for.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The scope of the token a sign-up gets: its own account.
pub const USER_SCOPE: &str = "user";
/// The scope of an operator's token: everything a user may do, and the statistics.
pub const ADMIN_SCOPE: &str = "admin";
/// The shortest secret accepted, in bytes: HMAC-SHA256 wants at least its output's length.
pub const MIN_SECRET: usize = 32;

const VERSION: &str = "v1";

/// The secret tokens are signed with. Its `Debug` form never shows it.
#[derive(Clone)]
pub struct TokenSecret(hmac::Key);

impl TokenSecret {
    /// A secret from its text.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when it is shorter than [`MIN_SECRET`] bytes.
    pub fn new(secret: &str) -> Result<TokenSecret, NanoError> {
        if secret.len() < MIN_SECRET {
            return Err(NanoError::new(
                nano::codes::INIT_FAILED,
                format!(
                    "{SECRET_ENV} has {} bytes; a token secret needs at least {MIN_SECRET}",
                    secret.len()
                ),
            ));
        }
        Ok(TokenSecret(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret.as_bytes(),
        )))
    }

    /// A fresh random secret: tokens are good in this process only, until it ends.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the system's random source fails.
    pub fn random() -> Result<TokenSecret, NanoError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| {
                NanoError::new(
                    nano::codes::INIT_FAILED,
                    "cannot make a random token secret",
                )
            })?;
        Ok(TokenSecret(key))
    }

    /// The secret `SIGNUP_TOKEN_SECRET` holds, or a random one when it is unset or empty.
    ///
    /// # Errors
    ///
    /// As [`new`](TokenSecret::new) and [`random`](TokenSecret::random).
    pub fn from_env() -> Result<TokenSecret, NanoError> {
        match crate::settings::value_of(SECRET_ENV) {
            Some(secret) if !secret.is_empty() => TokenSecret::new(&secret),
            _ => TokenSecret::random(),
        }
    }

    /// A token for `user_id` with `scope`, good until `expires` (seconds since the Unix epoch).
    pub fn sign(&self, user_id: i64, scope: &str, expires: u64) -> String {
        let claims = format!("{VERSION}.{user_id}.{scope}.{expires}");
        let tag = hmac::sign(&self.0, claims.as_bytes());
        format!("{claims}.{}", crate::hex::encode(tag.as_ref()))
    }

    /// The user and scope of `token` when it is signed with this secret and not expired at
    /// `now` (seconds since the Unix epoch).
    fn open(&self, token: &str, now: u64) -> Result<(i64, String), NanoError> {
        let refused = |why: &str| NanoError::new(UNAUTHORIZED, format!("the token {why}"));
        let (claims, hex) = token
            .rsplit_once('.')
            .ok_or_else(|| refused("is not a token of this system"))?;
        let tag = decode_hex(hex).ok_or_else(|| refused("is not a token of this system"))?;
        // Checked before anything in it is believed, in constant time.
        hmac::verify(&self.0, claims.as_bytes(), &tag)
            .map_err(|_| refused("has a signature this system did not make"))?;
        let parts: Vec<&str> = claims.split('.').collect();
        let [VERSION, user, scope, expires] = parts[..] else {
            return Err(refused("is not a token of this system"));
        };
        let user: i64 = user.parse().map_err(|_| refused("names no user"))?;
        let expires: u64 = expires.parse().map_err(|_| refused("has no expiry"))?;
        if expires <= now {
            return Err(refused("expired"));
        }
        Ok((user, scope.to_owned()))
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The 32 bytes of a signature in the form [`TokenSecret::sign`] writes: exactly 64 of
/// `0-9 a-f`. Nothing else is read as hex (no upper case, no sign), so one signature has one
/// spelling and a token cannot be altered into another that is still good.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    crate::hex::decode(hex).filter(|bytes| bytes.len() == 32)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The scope a request type needs: the statistics are for operators, everything else for any
/// signed-up user. `None` for a request the edge should never have asked about.
fn needed_scope(request: &str) -> Option<&'static str> {
    match request {
        <Stats as nano::Request>::NAME => Some(ADMIN_SCOPE),
        <WhoAmI as nano::Request>::NAME => Some(USER_SCOPE),
        _ => None,
    }
}

/// The `auth` service.
#[derive(Debug, Clone)]
pub struct Auth {
    secret: TokenSecret,
}

impl Auth {
    /// The service signing and verifying with `secret`.
    pub fn new(secret: TokenSecret) -> Auth {
        Auth { secret }
    }
}

impl auth::Handler for Auth {
    async fn issue(&self, _ctx: &Ctx, req: Issue) -> Result<Issued, NanoError> {
        if req.user_id <= 0 {
            return Err(NanoError::bad_request("a token is issued for a user id"));
        }
        let scope = match req.scope.as_str() {
            "" | USER_SCOPE => USER_SCOPE,
            ADMIN_SCOPE => ADMIN_SCOPE,
            other => {
                return Err(NanoError::bad_request(format!(
                    "unknown scope {other:?} (known: {USER_SCOPE}, {ADMIN_SCOPE})"
                )));
            }
        };
        let expires = now().saturating_add(TOKEN_LIFETIME.as_secs());
        Ok(Issued {
            token: self.secret.sign(req.user_id, scope, expires),
        })
    }

    async fn verify(&self, _ctx: &Ctx, req: Verify) -> Result<Identity, NanoError> {
        let (user_id, scope) = self.secret.open(&req.token, now())?;
        let allowed = match needed_scope(&req.request) {
            Some(USER_SCOPE) => scope == USER_SCOPE || scope == ADMIN_SCOPE,
            Some(needed) => scope == needed,
            None => false,
        };
        if !allowed {
            return Err(NanoError::new(
                FORBIDDEN,
                format!(
                    "a token with scope {scope:?} may not call {} of {:?}",
                    req.request, req.service
                ),
            ));
        }
        Ok(Identity { user_id, scope })
    }
}

/// `auth` with the secret `SIGNUP_TOKEN_SECRET` holds (a random one when it is unset), read when
/// the set builds the service.
pub fn auth() -> NewService {
    auth::service(|_| Ok(Auth::new(TokenSecret::from_env()?)))
}

/// `auth` with `secret`.
pub fn auth_with(secret: TokenSecret) -> NewService {
    auth::service(move |_| Ok(Auth::new(secret)))
}

/// The sign-up system's edge: `signup.WhoAmI` and `signup.Stats` need a bearer token that `auth`
/// accepts, and the callee finds the user's id under the metadata key `user`.
pub fn edge() -> EdgeAuth {
    EdgeAuth::new(
        auth::NAME,
        |query: AuthQuery| Verify {
            token: query.token,
            service: query.service,
            request: query.request,
        },
        |identity: Identity| identity.user_id.to_string(),
    )
    .protect::<WhoAmI>()
    .protect::<Stats>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> TokenSecret {
        TokenSecret::new("a test secret that is long enough!").unwrap()
    }

    #[test]
    fn a_token_opens_with_its_secret_until_it_expires() {
        let token = secret().sign(7, USER_SCOPE, 1_000);
        assert_eq!(secret().open(&token, 999).unwrap(), (7, USER_SCOPE.into()));
        let expired = secret().open(&token, 1_000).unwrap_err();
        assert_eq!(expired.message(), "the token expired");
        let other = TokenSecret::new("another secret that is long enough").unwrap();
        let err = other.open(&token, 999).unwrap_err();
        assert_eq!(err.code(), UNAUTHORIZED);
        assert!(err.message().contains("signature"), "{err}");
    }

    #[test]
    fn a_changed_claim_breaks_the_signature() {
        let token = secret().sign(7, USER_SCOPE, 1_000);
        let forged = token.replacen(".7.", ".8.", 1);
        assert!(
            secret()
                .open(&forged, 1)
                .unwrap_err()
                .message()
                .contains("signature")
        );
        let promoted = token.replacen(USER_SCOPE, ADMIN_SCOPE, 1);
        assert!(secret().open(&promoted, 1).is_err());
        for junk in ["", "v1", "v1.7.user.1000.zz", "....", "v1.7.user.1000.00"] {
            assert_eq!(
                secret().open(junk, 1).unwrap_err().code(),
                UNAUTHORIZED,
                "{junk}"
            );
        }
    }

    #[test]
    fn a_signature_has_one_spelling() {
        let token = secret().sign(7, USER_SCOPE, 1_000);
        assert!(secret().open(&token, 1).is_ok());
        let (claims, hex) = token.rsplit_once('.').unwrap();
        let letter = hex.find(|c: char| c.is_ascii_lowercase()).unwrap();
        let upper_one = format!(
            "{claims}.{}{}{}",
            &hex[..letter],
            hex[letter..=letter].to_ascii_uppercase(),
            &hex[letter + 1..]
        );
        // A pair `0x` written `+x` has the same value for `u8::from_str_radix`: a signature
        // with such a pair (the first user id whose signature has one) altered so.
        let (plus_claims, plus_hex, at) = (1..)
            .find_map(|user| {
                let token = secret().sign(user, USER_SCOPE, 1_000);
                let (claims, hex) = token.rsplit_once('.')?;
                let at = (0..hex.len()).step_by(2).find(|&i| &hex[i..=i] == "0")?;
                Some((claims.to_owned(), hex.to_owned(), at))
            })
            .unwrap();
        let plus = format!("{plus_claims}.{}+{}", &plus_hex[..at], &plus_hex[at + 1..]);
        for altered in [
            format!("{claims}.{}", hex.to_ascii_uppercase()),
            upper_one,
            plus,
        ] {
            let err = secret().open(&altered, 1).unwrap_err();
            assert_eq!(err.code(), UNAUTHORIZED, "{altered}");
            assert_eq!(err.message(), "the token is not a token of this system");
        }
        assert_eq!(decode_hex(&"0f".repeat(32)), Some(vec![15; 32]));
        assert_eq!(decode_hex(&"0F".repeat(32)), None);
        assert_eq!(decode_hex(&"+f".repeat(32)), None);
        assert_eq!(decode_hex(&"0f".repeat(31)), None);
        assert_eq!(decode_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn short_secrets_are_refused_and_never_shown() {
        let err = TokenSecret::new("short").unwrap_err();
        assert!(!err.to_string().contains("short\""), "{err}");
        assert_eq!(format!("{:?}", secret()), "TokenSecret(<redacted>)");
    }
}
