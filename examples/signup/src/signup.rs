//! `signup`: validates a sign-up, creates the account, sends the welcome mail.

use nano::{Client, Ctx, NanoError, NewService};

use crate::api::codes;
use crate::api::signup::{self, Mail, Me, SignUp, SignedUp, Statistics, Stats, WhoAmI};
use crate::api::{auth, mailer, users};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD: usize = 8;
/// The longest password accepted, in characters.
pub const MAX_PASSWORD: usize = 128;
/// The longest email address accepted, in bytes (RFC 5321's limit on a path).
pub const MAX_EMAIL: usize = 254;
/// The longest idempotency key accepted, in bytes.
pub const MAX_KEY: usize = 64;

/// The `signup` service; depends on `users`, `mailer` and `auth`.
#[derive(Debug)]
pub struct Signup {
    users: Client,
    mailer: Client,
    auth: Client,
}

/// A sign-up that passed validation.
struct Valid {
    email: String,
    key: String,
}

fn invalid_email(email: &str, why: &str) -> NanoError {
    NanoError::new(
        codes::INVALID_EMAIL,
        format!("{email:?} is not an email address like name@example.com: {why}"),
    )
}

/// The checks a sign-up passes before anything is written. Deliberately simple: an address is
/// proven by the welcome mail reaching it, not by a grammar.
fn validate(req: &SignUp) -> Result<Valid, NanoError> {
    let email = req.email.trim().to_ascii_lowercase();
    if email.is_empty() {
        return Err(NanoError::new(
            codes::INVALID_EMAIL,
            "an email address is needed",
        ));
    }
    if email.len() > MAX_EMAIL {
        return Err(NanoError::new(
            codes::INVALID_EMAIL,
            format!("an email address has at most {MAX_EMAIL} bytes in UTF-8"),
        ));
    }
    if email.chars().any(char::is_whitespace) {
        return Err(invalid_email(&email, "it contains a space"));
    }
    if email.chars().any(char::is_control) {
        return Err(invalid_email(&email, "it contains a control character"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid_email(&email, "it has no @"));
    };
    if local.is_empty() || domain.contains('@') {
        return Err(invalid_email(
            &email,
            "it needs one @ with a name before it",
        ));
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(invalid_email(
            &email,
            "the part after @ must be a domain like example.com",
        ));
    }
    let length = req.password.chars().count();
    if length < MIN_PASSWORD {
        return Err(NanoError::new(
            codes::BAD_PASSWORD,
            format!("a password has at least {MIN_PASSWORD} characters"),
        ));
    }
    if length > MAX_PASSWORD {
        return Err(NanoError::new(
            codes::BAD_PASSWORD,
            format!("a password has at most {MAX_PASSWORD} characters"),
        ));
    }
    let key = &req.idempotency_key;
    if key.len() > MAX_KEY
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(NanoError::new(
            codes::BAD_IDEMPOTENCY_KEY,
            format!("an idempotency key has at most {MAX_KEY} of the characters A-Z a-z 0-9 . _ -"),
        ));
    }
    Ok(Valid {
        email,
        key: key.clone(),
    })
}

impl signup::Handler for Signup {
    async fn sign_up(&self, ctx: &Ctx, req: SignUp) -> Result<SignedUp, NanoError> {
        let valid = validate(&req)?;
        // `users` keeps a salted hash of the password, and checks a retry's against it: the
        // same key with another password gets no token.
        let created = self
            .users
            .call(
                ctx,
                users::Create {
                    email: valid.email.clone(),
                    password: req.password,
                    signup_key: valid.key,
                },
            )
            .await
            .map_err(|err| NanoError::wrap(err, "cannot create the account"))?;
        let user = created.user;
        let mail = if user.welcomed {
            // A retry of a sign-up that completed: the mail went out already.
            Mail::Sent
        } else {
            self.welcome(ctx, &valid.email, user.id).await
        };
        // Last, so that a failure leaves nothing a retry with the same key cannot finish.
        let issued = self
            .auth
            .call(
                ctx,
                auth::Issue {
                    user_id: user.id,
                    scope: String::new(),
                },
            )
            .await
            .map_err(|err| NanoError::wrap(err, "the account exists, but no token was issued"))?;
        Ok(SignedUp {
            user_id: user.id,
            email: valid.email,
            mail,
            token: issued.token,
        })
    }

    async fn who_am_i(&self, ctx: &Ctx, _req: WhoAmI) -> Result<Me, NanoError> {
        let user_id = authenticated_user(ctx)?;
        let user = self
            .users
            .call(ctx, users::Get { id: user_id })
            .await
            .map_err(|err| NanoError::wrap(err, format!("cannot find account {user_id}")))?;
        Ok(Me {
            user_id,
            email: user.email,
        })
    }

    async fn stats(&self, ctx: &Ctx, _req: Stats) -> Result<Statistics, NanoError> {
        authenticated_user(ctx)?;
        let counted = self.users.call(ctx, users::Count {}).await?;
        Ok(Statistics {
            accounts: counted.accounts,
        })
    }
}

impl Signup {
    /// Sends the welcome mail and records that it went out; the mail's state.
    async fn welcome(&self, ctx: &Ctx, email: &str, user_id: i64) -> Mail {
        let send = mailer::SendWelcome {
            to: email.to_owned(),
            user_id,
        };
        if let Err(err) = self.mailer.call(ctx, send).await {
            // The account exists; the mail waits for a retry with the same key. The error says
            // which failure it was; `mailer` keeps the provider's key out of every message, and
            // the address stays out of the log.
            tracing::warn!(
                code = err.code(),
                user_id,
                "the welcome mail is pending: {err}"
            );
            return Mail::Pending;
        }
        // The mail is sent whether or not this mark is written; a failure here only means a
        // retry asks the provider again, which deduplicates it by the account's id.
        let _ = self
            .users
            .call(ctx, users::MarkWelcomed { id: user_id })
            .await;
        Mail::Sent
    }
}

/// The user the edge authenticated (see [`crate::edge`]). A call that did not come through the
/// edge has none and is refused the way the edge refuses it, so that the endpoint stays closed
/// even in a set that forgot its edge.
fn authenticated_user(ctx: &Ctx) -> Result<i64, NanoError> {
    ctx.metadata(nano_wire::DEFAULT_IDENTITY_KEY)
        .and_then(|user| user.parse().ok())
        .ok_or_else(|| {
            NanoError::new(
                nano_wire::codes::UNAUTHORIZED,
                "this request needs a bearer token (Authorization: Bearer <token>)",
            )
        })
}

/// `signup`, built with its clients of `users`, `mailer` and `auth`.
pub fn signup() -> NewService {
    signup::service(|deps| {
        Ok(Signup {
            users: deps.client(users::NAME)?,
            mailer: deps.client(mailer::NAME)?,
            auth: deps.client(auth::NAME)?,
        })
    })
}
