//! [`Redaction`]: which fields hold secrets, and their values replaced wherever the toolkit
//! writes a body.

use std::borrow::Cow;

use serde_json::Value;

use crate::json::Json;
use crate::tree::{CallNode, CallOutcome};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The field names that hold secrets unless a [`Redaction`] says otherwise: passwords, tokens,
/// API keys and other credentials. Names are compared without regard to ASCII case, with `-`
/// read as `_`; a name ending in `_password`, `_secret`, `_token` or `_api_key` (e.g.
/// `access_token`, `client_secret`) is a secret too.
pub const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "private_key",
    "credentials",
];

const SECRET_SUFFIXES: &[&str] = &["_password", "_secret", "_token", "_api_key"];

/// The rule for secrets in recorded and written bodies: the value of every field whose name is a
/// secret's (by default [`SECRET_FIELDS`]) is replaced with [`REDACTED`], at any depth, so that
/// recordings, snapshots and failure reports never hold a password, a bearer token or an API
/// key. Empty strings and `null` stay as they are: they hold nothing, and a replay of them
/// behaves as the recording did.
///
/// Secrets are redacted by default everywhere; a test that needs them opts in with
/// [`Redaction::keep_secrets`] (e.g. `CallRecorder::with_redaction(Redaction::keep_secrets())`).
///
/// ```
/// use nano_record::Redaction;
/// use serde_json::json;
///
/// let mut body = json!({"email": "ada@example.com", "password": "correct horse",
///                       "session": {"Access-Token": "t-1"}, "idempotency_key": "k-1"});
/// Redaction::default().redact(&mut body);
/// assert_eq!(body, json!({"email": "ada@example.com", "password": "[redacted]",
///                         "session": {"Access-Token": "[redacted]"}, "idempotency_key": "k-1"}));
///
/// let custom = Redaction::default().field("pin");
/// assert!(custom.is_secret("PIN") && custom.is_secret("password"));
/// assert!(!Redaction::keep_secrets().is_secret("password"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// Extra secret field names, normalised.
    fields: Vec<String>,
    /// Whether the default names apply.
    defaults: bool,
}

impl Default for Redaction {
    /// The default secret names ([`SECRET_FIELDS`] and their suffixes).
    fn default() -> Self {
        Redaction {
            fields: Vec::new(),
            defaults: true,
        }
    }
}

fn normalise(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase() || b == b'-') {
        Cow::Owned(name.to_ascii_lowercase().replace('-', "_"))
    } else {
        Cow::Borrowed(name)
    }
}

impl Redaction {
    /// Nothing is redacted: the opt-in of a test that needs the secrets in what it writes.
    pub fn keep_secrets() -> Self {
        Redaction {
            fields: Vec::new(),
            defaults: false,
        }
    }

    /// Also redacts fields called `name` (compared as the defaults are).
    #[must_use]
    pub fn field(mut self, name: &str) -> Self {
        self.fields.push(normalise(name).into_owned());
        self
    }

    /// Whether nothing is redacted.
    pub fn keeps_everything(&self) -> bool {
        !self.defaults && self.fields.is_empty()
    }

    /// Whether a field called `name` holds a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        let name = normalise(name);
        let name = name.as_ref();
        self.fields.iter().any(|field| field == name)
            || (self.defaults
                && (SECRET_FIELDS.contains(&name)
                    || SECRET_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))))
    }

    /// Replaces the secrets in `value`; whether anything was replaced. Walks with a heap stack,
    /// so a value of any depth is redacted.
    pub fn redact(&self, value: &mut Value) -> bool {
        if self.keeps_everything() {
            return false;
        }
        let mut changed = false;
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        if !self.is_secret(key) {
                            stack.push(child);
                        } else if !holds_nothing(child) {
                            *child = Value::String(REDACTED.to_owned());
                            changed = true;
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                _ => {}
            }
        }
        changed
    }

    /// `value` with its secrets replaced.
    pub fn redacted(&self, value: &Value) -> Value {
        let mut value = value.clone();
        self.redact(&mut value);
        value
    }

    /// A recorded body with its secrets replaced (the same body when it has none).
    pub fn redact_json(&self, body: &Json) -> Json {
        if self.keeps_everything() || !self.may_hold_secret(body.as_str()) {
            return body.clone();
        }
        let mut value = body.to_value();
        if self.redact(&mut value) {
            Json::from(value)
        } else {
            body.clone()
        }
    }

    /// An outcome with the secrets of its response replaced.
    pub fn redact_outcome(&self, outcome: &CallOutcome) -> CallOutcome {
        match outcome {
            CallOutcome::Response(body) => CallOutcome::Response(self.redact_json(body)),
            other => other.clone(),
        }
    }

    /// Replaces the secrets of every body and response in `tree`.
    pub fn redact_tree(&self, tree: &mut CallNode) {
        if self.keeps_everything() {
            return;
        }
        let mut stack = vec![tree];
        while let Some(node) = stack.pop() {
            node.body = self.redact_json(&node.body);
            node.outcome = self.redact_outcome(&node.outcome);
            stack.extend(node.calls.iter_mut());
        }
    }

    /// A cheap test on a body's text: with the default names only, a body none of whose keys
    /// can be a secret's is left unparsed.
    fn may_hold_secret(&self, text: &str) -> bool {
        if !self.fields.is_empty() {
            return true;
        }
        let lower = text.to_ascii_lowercase();
        [
            "pass",
            "secret",
            "token",
            "key",
            "authorization",
            "credentials",
        ]
        .iter()
        .any(|part| lower.contains(part))
    }
}

fn holds_nothing(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_matched_by_rule_and_nothing_else() {
        let r = Redaction::default();
        for secret in [
            "password",
            "PASSWORD",
            "api-key",
            "ApiKey",
            "access_token",
            "client_secret",
            "new_password",
            "Authorization",
            "token",
        ] {
            assert!(r.is_secret(secret), "{secret}");
        }
        for plain in [
            "idempotency_key",
            "signup_key",
            "email",
            "tokens",
            "keyword",
            "user_id",
        ] {
            assert!(!r.is_secret(plain), "{plain}");
        }
    }

    #[test]
    fn secrets_are_replaced_at_any_depth_but_empty_ones_kept() {
        let mut value = json!([{"a": [{"token": "t"}]}, {"password": ""}, {"secret": null},
                               {"secret": {"nested": 1}}]);
        assert!(Redaction::default().redact(&mut value));
        assert_eq!(
            value,
            json!([{"a": [{"token": "[redacted]"}]}, {"password": ""}, {"secret": null},
                   {"secret": "[redacted]"}])
        );
        let mut deep = json!({"token": "t"});
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(Redaction::default().redact(&mut deep));
        // Dropping a deep value recurses; leak it rather than test serde_json's drop.
        std::mem::forget(deep);
    }

    #[test]
    fn opting_in_keeps_everything() {
        let body = Json::from(json!({"password": "p"}));
        assert_eq!(Redaction::keep_secrets().redact_json(&body), body);
        assert_eq!(
            Redaction::default().redact_json(&body),
            Json::from(json!({"password": "[redacted]"}))
        );
        let extra = Redaction::keep_secrets().field("pin");
        assert_eq!(
            extra.redact_json(&Json::from(json!({"pin": "1234", "password": "p"}))),
            Json::from(json!({"pin": "[redacted]", "password": "p"}))
        );
    }
}
