//! `mailer`: the external mail provider's HTTP API, wrapped as a nano service.
//!
//! The provider's API, as this service speaks it: `POST {base}/messages` with the JSON
//! `{"to","subject","text"}`, the headers `Authorization: Bearer {key}` and
//! `Idempotency-Key: welcome-{user id}` (so that a provider which honours it sends one welcome
//! mail per account however often it is asked), answered by `{"id": "…"}` on success.

use std::fmt;
use std::time::Duration;

use nano::{Ctx, NanoError, NewService};
use serde::{Deserialize, Serialize};

use crate::api::codes;
use crate::api::mailer::{self, SendWelcome, Sent};

/// The environment variable with the provider's base URL (unset or empty: the [sandbox
/// provider](SANDBOX_DOWN_DOMAIN); `none`: no provider).
pub const URL_ENV: &str = "SIGNUP_MAIL_URL";
/// The value of `SIGNUP_MAIL_URL` that configures no provider: every send fails with
/// `S-MAIL-UNCONFIGURED`.
pub const NO_PROVIDER: &str = "none";
/// The recipient domain for which the built-in sandbox provider is down.
///
/// Without `SIGNUP_MAIL_URL`, mail goes to a sandbox inside the process: it delivers nothing,
/// accepts every mail with the message id `sandbox-welcome-<user id>` — except mail to an
/// address at this domain, which fails with `S-MAIL-UNAVAILABLE` as a provider that is down
/// would. Deterministic on purpose: a fresh machine, the tests and the recorded scenarios all
/// see the same answers (`.invalid` is reserved, so no real address is ever at it).
pub const SANDBOX_DOWN_DOMAIN: &str = "provider-down.invalid";
/// The environment variable with the provider's API key.
pub const KEY_ENV: &str = "SIGNUP_MAIL_KEY";
/// The environment variable with the provider's timeout in milliseconds.
pub const TIMEOUT_ENV: &str = "SIGNUP_MAIL_TIMEOUT_MS";
/// How long a send may take when `SIGNUP_MAIL_TIMEOUT_MS` does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a provider's error answer an error message quotes.
const QUOTED_ANSWER: usize = 200;

/// A secret that never shows: its `Debug` form is `ApiKey(<redacted>)` and it has no `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// Replaces every occurrence of the key in `text`, for text that came from outside (a
    /// provider may echo the request it refused).
    fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How `mailer` reaches the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailConfig {
    /// The provider's base URL (`http://…`); empty for the sandbox provider (see
    /// [`SANDBOX_DOWN_DOMAIN`]); [`NO_PROVIDER`] for none, and then every send fails with
    /// `S-MAIL-UNCONFIGURED` without touching the network.
    pub url: String,
    /// The API key sent as a bearer token.
    pub key: ApiKey,
    /// The longest a send may take (the caller's deadline, when sooner, wins).
    pub timeout: Duration,
}

impl MailConfig {
    /// The configuration in the settings `--mail-url`, `--mail-key` and `--mail-timeout-ms` (the
    /// flags this process's server main was given, else `SIGNUP_MAIL_URL`, `SIGNUP_MAIL_KEY` and
    /// `SIGNUP_MAIL_TIMEOUT_MS`).
    ///
    /// # Errors
    ///
    /// As [`from_lookup`](MailConfig::from_lookup).
    pub fn from_env() -> Result<MailConfig, NanoError> {
        MailConfig::from_lookup(crate::settings::value_of)
    }

    /// The configuration in the variables `lookup` answers. An unset or empty
    /// `SIGNUP_MAIL_TIMEOUT_MS` is [`DEFAULT_TIMEOUT`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use signup::{MailConfig, TIMEOUT_ENV};
    ///
    /// let config = MailConfig::from_lookup(|name| (name == TIMEOUT_ENV).then(|| "250".into()))?;
    /// assert_eq!(config.timeout, Duration::from_millis(250));
    /// let err = MailConfig::from_lookup(|name| (name == TIMEOUT_ENV).then(|| "abc".into()));
    /// assert_eq!(err.unwrap_err().code(), "S-MAIL-UNCONFIGURED");
    /// # Ok::<(), nano::NanoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `S-MAIL-UNCONFIGURED` when `SIGNUP_MAIL_TIMEOUT_MS` is not a whole number of
    /// milliseconds above zero, so that a mistyped timeout stops the server when it starts
    /// instead of silently becoming the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<MailConfig, NanoError> {
        let timeout = match lookup(TIMEOUT_ENV).as_deref().map(str::trim) {
            None | Some("") => DEFAULT_TIMEOUT,
            Some(ms) => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(NanoError::new(
                        codes::MAIL_UNCONFIGURED,
                        format!(
                            "{TIMEOUT_ENV} {ms:?} is not a number of milliseconds above zero \
                             (e.g. 5000)"
                        ),
                    ));
                }
            },
        };
        Ok(MailConfig {
            url: lookup(URL_ENV).unwrap_or_default().trim().to_owned(),
            key: ApiKey::new(lookup(KEY_ENV).unwrap_or_default()),
            timeout,
        })
    }

    /// A provider at `url` with `key`, and the default timeout.
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> MailConfig {
        MailConfig {
            url: url.into(),
            key: ApiKey::new(key),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same configuration with another timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> MailConfig {
        self.timeout = timeout;
        self
    }
}

/// The `mailer` service.
#[derive(Debug, Clone)]
pub struct Mailer {
    config: MailConfig,
    /// Where mail goes.
    provider: Provider,
    http: reqwest::Client,
}

/// Where `mailer` sends.
#[derive(Debug, Clone)]
enum Provider {
    /// `{base}/messages`, checked when the service is made.
    Http(reqwest::Url),
    /// The built-in sandbox.
    Sandbox,
    /// None: every send fails.
    Unconfigured,
}

#[derive(Serialize)]
struct Message<'a> {
    to: &'a str,
    subject: &'a str,
    text: &'a str,
}

#[derive(Deserialize)]
struct Accepted {
    id: String,
}

impl Mailer {
    /// A mailer for `config`.
    ///
    /// # Errors
    ///
    /// `S-MAIL-UNCONFIGURED` when the URL is not an `http://` URL (this example is built without
    /// TLS), so that a server with a mistyped URL fails when it starts, not at its first mail.
    pub fn new(config: MailConfig) -> Result<Mailer, NanoError> {
        let provider = if config.url.is_empty() {
            Provider::Sandbox
        } else if config.url == NO_PROVIDER {
            Provider::Unconfigured
        } else {
            let shown = shown_url(&config.url);
            let bad = |why: &str| {
                NanoError::new(
                    codes::MAIL_UNCONFIGURED,
                    format!("{URL_ENV} {shown:?} {why}"),
                )
            };
            let base = reqwest::Url::parse(&format!("{}/", config.url.trim_end_matches('/')))
                .map_err(|_| bad("is not a URL"))?;
            if base.scheme() != "http" {
                return Err(bad("is not an http:// URL"));
            }
            if !base.username().is_empty() || base.password().is_some() {
                // The key goes in SIGNUP_MAIL_KEY; credentials in the URL would reach every
                // error that names the endpoint.
                return Err(bad(
                    "has credentials in it; give the provider's key in SIGNUP_MAIL_KEY",
                ));
            }
            Provider::Http(base.join("messages").map_err(|_| bad("is not a URL"))?)
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|err| NanoError::internal(format!("cannot make an HTTP client: {err}")))?;
        Ok(Mailer {
            config,
            provider,
            http,
        })
    }

    async fn send(&self, ctx: &Ctx, req: &SendWelcome) -> Result<Sent, NanoError> {
        let endpoint = match &self.provider {
            Provider::Http(endpoint) => endpoint,
            Provider::Sandbox => return sandbox(req),
            Provider::Unconfigured => {
                return Err(NanoError::new(
                    codes::MAIL_UNCONFIGURED,
                    format!("no mail provider is configured ({URL_ENV}={NO_PROVIDER})"),
                ));
            }
        };
        let text = format!("Welcome! Your account {} is ready.", req.to);
        let body = serde_json::to_vec(&Message {
            to: &req.to,
            subject: "Welcome",
            text: &text,
        })
        .map_err(|err| NanoError::new(nano::codes::ENCODE, err.to_string()))?;
        let timeout = ctx
            .remaining()
            .map_or(self.config.timeout, |left| left.min(self.config.timeout));
        let answer = self
            .http
            .post(endpoint.clone())
            .bearer_auth(&self.config.key.0)
            .header("idempotency-key", format!("welcome-{}", req.user_id))
            .header("content-type", "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|err| self.transport_error(&err, timeout))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err, timeout))?;
        if !status.is_success() {
            return Err(self.refused(status, &bytes));
        }
        let accepted: Accepted = serde_json::from_slice(&bytes).map_err(|err| {
            NanoError::new(
                codes::MAIL_BAD_RESPONSE,
                format!("the mail provider's answer is not the documented JSON: {err}"),
            )
        })?;
        Ok(Sent {
            message_id: accepted.id,
        })
    }

    /// A failure to exchange a request and an answer. reqwest's text names the URL only, but it
    /// is redacted anyway: the key must not leak through a URL someone built by hand.
    fn transport_error(&self, err: &reqwest::Error, timeout: Duration) -> NanoError {
        if err.is_timeout() {
            return NanoError::new(
                codes::MAIL_TIMEOUT,
                format!("the mail provider did not answer within {timeout:?}"),
            );
        }
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(err) = source {
            text.push_str(nano::CHAIN_SEPARATOR);
            text.push_str(&err.to_string());
            source = err.source();
        }
        NanoError::new(
            codes::MAIL_UNAVAILABLE,
            format!(
                "the mail provider is unreachable: {}",
                self.config.key.redact(&text)
            ),
        )
    }

    /// A non-2xx answer, quoting the start of its body with the key redacted.
    fn refused(&self, status: reqwest::StatusCode, body: &[u8]) -> NanoError {
        let quoted: String = String::from_utf8_lossy(body)
            .chars()
            .take(QUOTED_ANSWER)
            .collect();
        let quoted = self.config.key.redact(&quoted);
        let (code, what) = match status.as_u16() {
            401 | 403 => (codes::MAIL_UNAUTHORIZED, "refused the API key"),
            400..=499 => (codes::MAIL_REJECTED, "rejected the mail"),
            _ => (codes::MAIL_PROVIDER, "failed"),
        };
        NanoError::new(
            code,
            format!("the mail provider {what} ({status}): {quoted}"),
        )
    }
}

/// `url` as an error may show it: the userinfo of `scheme://user:password@host` (everything
/// between `//` and the last `@` before the path) replaced, whether or not the rest parses.
fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("//") else {
        // Not `scheme://…`; whatever comes before an `@` may still be a credential.
        return match url.rfind('@') {
            Some(at) => format!("<redacted>{}", &url[at..]),
            None => url.to_owned(),
        };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}//<redacted>{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// The sandbox provider's answer (see [`SANDBOX_DOWN_DOMAIN`]).
fn sandbox(req: &SendWelcome) -> Result<Sent, NanoError> {
    let domain = req.to.rsplit_once('@').map_or("", |(_, domain)| domain);
    if domain.eq_ignore_ascii_case(SANDBOX_DOWN_DOMAIN) {
        return Err(NanoError::new(
            codes::MAIL_UNAVAILABLE,
            format!("the sandbox mail provider is down for {SANDBOX_DOWN_DOMAIN}"),
        ));
    }
    Ok(Sent {
        message_id: format!("sandbox-welcome-{}", req.user_id),
    })
}

impl mailer::Handler for Mailer {
    async fn send_welcome(&self, ctx: &Ctx, req: SendWelcome) -> Result<Sent, NanoError> {
        self.send(ctx, &req).await
    }
}

/// `mailer` with the provider `SIGNUP_MAIL_URL` and `SIGNUP_MAIL_KEY` name, read when the set
/// builds the service.
pub fn mailer() -> NewService {
    mailer::service(|_| Mailer::new(MailConfig::from_env()?))
}

/// `mailer` with `config`.
pub fn mailer_with(config: MailConfig) -> NewService {
    mailer::service(move |_| Mailer::new(config))
}
