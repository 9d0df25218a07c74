//! A sign-up system, built only from the toolkit's public APIs: `signup` validates a sign-up,
//! creates the account in `users` (SQLite) and sends the welcome mail through `mailer`, a nano
//! service wrapping an external mail provider's HTTP API.
//!
//! ```text
//! signup ──► users   (SQLite: SIGNUP_DB)
//!        └─► mailer  (HTTP: SIGNUP_MAIL_URL, SIGNUP_MAIL_KEY) ──► mail provider
//! ```
//!
//! - A duplicate email is `C-DUPLICATE-EMAIL`; the database's UNIQUE constraint decides, so of
//!   many concurrent sign-ups with one address exactly one wins, in any number of processes.
//! - When the mail provider fails, the account still exists and the answer says
//!   `"mail": "pending"`.
//! - Retries with the same idempotency key create one account and send one mail (a retry of a
//!   sign-up whose mail is pending sends it).
//!
//! Two layouts: `monolith` (`signup-all` runs all three) and `split` (`signup-front`,
//! `signup-users` and `signup-mailer`, calling each other over HTTP).
//!
//! ```
//! use nano::{Ctx, ServiceSet};
//! use signup::api::signup::{Mail, SignUp};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
//! // No SIGNUP_DB, no SIGNUP_MAIL_URL: an in-memory database and the sandbox mail provider.
//! let set = signup::system().all(ServiceSet::builder()).build()?;
//! let request = SignUp {
//!     email: "Ada@Example.com".into(),
//!     password: "correct horse".into(),
//!     ..SignUp::default()
//! };
//! let signed_up = set.client("test", signup::api::signup::NAME)?.call(&Ctx::new(), request).await?;
//! assert_eq!(signed_up.email, "ada@example.com");
//! assert_eq!(signed_up.mail, Mail::Sent);
//! # Ok(()) }
//! ```

pub mod api;
mod auth;
mod hex;
mod mailer;
mod password;
pub mod settings;
mod signup;
mod users;

use nano_server::System;

pub use auth::{
    ADMIN_SCOPE, Auth, MIN_SECRET, SECRET_ENV, TOKEN_LIFETIME, TokenSecret, USER_SCOPE, auth,
    auth_with, edge,
};
pub use mailer::{
    ApiKey, DEFAULT_TIMEOUT, KEY_ENV, MailConfig, Mailer, NO_PROVIDER, SANDBOX_DOWN_DOMAIN,
    TIMEOUT_ENV, URL_ENV, mailer, mailer_with,
};
pub use password::PASSWORD_ROUNDS;
pub use signup::{MAX_EMAIL, MAX_KEY, MAX_PASSWORD, MIN_PASSWORD, Signup, signup};
pub use users::{
    DB_ENV, DEFAULT_SEED, Database, SEED_ENV, Users, seed_from_value, users, users_on,
};

/// The sign-up system as a [`System`]: its services, executables and layouts.
pub fn system() -> System {
    let system = System::new("the sign-up system")
        .service(&api::signup::API, signup)
        .service(&api::users::API, users)
        .service(&api::mailer::API, mailer)
        .service(&api::auth::API, auth)
        .auth(edge());
    settings::ALL
        .iter()
        .fold(system, |system, (setting, service)| {
            system.setting(**setting, &[service])
        })
        .server(
            "signup-all",
            "Runs signup, users, mailer and auth in one process; exposes signup. Its settings \
             (database, mail provider, token secret) default to what works on a fresh machine: \
             an in-memory database, the built-in sandbox provider, a random secret.",
            &["signup", "users", "mailer", "auth"],
            &["signup"],
        )
        .server(
            "signup-front",
            "Runs signup and auth; calls users and mailer over HTTP (--peer users=ADDR --peer \
             mailer=ADDR).",
            &["signup", "auth"],
            &["signup"],
        )
        .server(
            "signup-users",
            "Runs users. Keep its address private: it answers anyone who reaches it.",
            &["users"],
            &["users"],
        )
        .server(
            "signup-mailer",
            "Runs mailer. Keep its address private: it sends mail with the provider's key for \
             anyone who reaches it.",
            &["mailer"],
            &["mailer"],
        )
        .layout("monolith", &["signup-all"])
        .layout("split", &["signup-front", "signup-users", "signup-mailer"])
}
