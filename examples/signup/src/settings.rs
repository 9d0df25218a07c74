//! The sign-up system's own settings: flags of the executables that run the services reading
//! them, with their environment variables (see `nano_server::Setting`).

use nano_server::Setting;

use crate::{DB_ENV, KEY_ENV, SECRET_ENV, SEED_ENV, TIMEOUT_ENV, URL_ENV};

/// `--db PATH` / `SIGNUP_DB`, read by `users`.
pub static DB: Setting = Setting::new(
    "db",
    DB_ENV,
    "PATH",
    "The SQLite file of the accounts (unset, empty or :memory:: in memory)",
);
/// `--seed ADDRESSES` / `SIGNUP_SEED`, read by `users`.
pub static SEED: Setting = Setting::new(
    "seed",
    SEED_ENV,
    "ADDRESSES",
    "Comma-separated accounts users makes sure exist (unset: demo@example.com; empty: none)",
);
/// `--mail-url URL` / `SIGNUP_MAIL_URL`, read by `mailer`.
pub static MAIL_URL: Setting = Setting::new(
    "mail-url",
    URL_ENV,
    "URL",
    "The mail provider's base URL (unset: the built-in sandbox; none: no provider)",
);
/// `--mail-key KEY` / `SIGNUP_MAIL_KEY`, read by `mailer`.
pub static MAIL_KEY: Setting = Setting::new(
    "mail-key",
    KEY_ENV,
    "KEY",
    "The mail provider's API key (prefer the variable: flags show in process lists)",
);
/// `--mail-timeout-ms MS` / `SIGNUP_MAIL_TIMEOUT_MS`, read by `mailer`.
pub static MAIL_TIMEOUT: Setting = Setting::new(
    "mail-timeout-ms",
    TIMEOUT_ENV,
    "MS",
    "How long a send to the provider may take, in milliseconds (default 5000)",
);
/// `--token-secret SECRET` / `SIGNUP_TOKEN_SECRET`, read by `auth`.
pub static TOKEN_SECRET: Setting = Setting::new(
    "token-secret",
    SECRET_ENV,
    "SECRET",
    "The secret tokens are signed with, at least 32 bytes (unset: a random one per process; \
     prefer the variable: flags show in process lists)",
);

/// Every setting with the service that reads it, as the system declares them.
pub(crate) const ALL: [(&Setting, &str); 6] = [
    (&DB, "users"),
    (&SEED, "users"),
    (&MAIL_URL, "mailer"),
    (&MAIL_KEY, "mailer"),
    (&MAIL_TIMEOUT, "mailer"),
    (&TOKEN_SECRET, "auth"),
];

/// The value of the setting read from the environment variable `env`: its flag when this
/// process's server main was given one, else the variable.
pub(crate) fn value_of(env: &str) -> Option<String> {
    ALL.iter()
        .find(|(setting, _)| setting.env() == env)
        .map_or_else(|| std::env::var(env).ok(), |(setting, _)| setting.value())
}
