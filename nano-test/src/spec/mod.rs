//! [`Spec`]: the matching and redaction rules, their paths, comparisons and call-tree redaction.

pub(crate) mod compare;
mod path;
mod tree;

use std::fmt;

use nano::NanoError;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes;

pub use compare::{Mismatch, MismatchKind, Mismatches};
pub use path::{PathPattern, Segment};
#[cfg(feature = "snapshot")]
pub(crate) use tree::TreeSnapshot;

/// What a compared or snapshotted body belongs to: the called service and the request's wire
/// name. Scoped rules apply only to their target; mismatch reports name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// The called service; empty when unknown.
    pub service: String,
    /// The request's wire name ([`nano::Request::NAME`]); empty when unknown.
    pub request: String,
}

impl Target {
    /// The target `request` sent to `service`.
    pub fn new(service: impl Into<String>, request: impl Into<String>) -> Self {
        Target {
            service: service.into(),
            request: request.into(),
        }
    }

    /// A value of unknown origin: only unscoped rules apply to it.
    pub fn unknown() -> Self {
        Target::default()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.service.is_empty(), self.request.is_empty()) {
            (true, true) => f.write_str("value"),
            (false, true) => write!(f, "service {:?}", self.service),
            (true, false) => write!(f, "request {}", self.request),
            (false, false) => write!(f, "service {:?}, request {}", self.service, self.request),
        }
    }
}

/// How a value is checked where a [`Rule::Match`](Action::Match) applies.
///
/// In JSON: `"any"`, `"any_string"`, `"any_number"`, `{"regex": "^u-[0-9]+$"}` (the whole string
/// need not match: anchor the pattern), `{"range": {"min": 0, "max": 10}}` (inclusive, either bound
/// optional).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matcher {
    /// Any value, `null` included.
    Any,
    /// Any string.
    AnyString,
    /// Any number.
    AnyNumber,
    /// A string matching the regular expression.
    Regex(#[serde(with = "regex_text")] Regex),
    /// A number within the inclusive bounds.
    Range {
        /// The smallest accepted number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// The largest accepted number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
}

impl Matcher {
    /// A [`Matcher::Regex`].
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the expression does not compile.
    pub fn regex(pattern: &str) -> Result<Matcher, NanoError> {
        Regex::new(pattern)
            .map(Matcher::Regex)
            .map_err(|err| NanoError::new(codes::BAD_SPEC, format!("bad regex {pattern:?}: {err}")))
    }

    /// A [`Matcher::Range`] from `min` to `max`, both inclusive.
    pub fn range(min: impl Into<Option<f64>>, max: impl Into<Option<f64>>) -> Matcher {
        Matcher::Range {
            min: min.into(),
            max: max.into(),
        }
    }

    /// Whether `value` satisfies the matcher.
    pub fn matches(&self, value: &Value) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::AnyString => value.is_string(),
            Matcher::AnyNumber => value.is_number(),
            Matcher::Regex(regex) => value.as_str().is_some_and(|text| regex.is_match(text)),
            Matcher::Range { min, max } => value
                .as_f64()
                .is_some_and(|n| min.is_none_or(|min| n >= min) && max.is_none_or(|max| n <= max)),
        }
    }

    /// What a matching value is replaced with in snapshots, e.g. `[string]`.
    pub fn placeholder(&self) -> String {
        format!("[{self}]")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Any => f.write_str("any"),
            Matcher::AnyString => f.write_str("string"),
            Matcher::AnyNumber => f.write_str("number"),
            Matcher::Regex(regex) => write!(f, "matches {}", regex.as_str()),
            Matcher::Range { min, max } => match (min, max) {
                (Some(min), Some(max)) => write!(f, "number in {min}..={max}"),
                (Some(min), None) => write!(f, "number >= {min}"),
                (None, Some(max)) => write!(f, "number <= {max}"),
                (None, None) => f.write_str("number"),
            },
        }
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Matcher::Regex(a), Matcher::Regex(b)) => a.as_str() == b.as_str(),
            (Matcher::Range { min: a, max: b }, Matcher::Range { min: c, max: d }) => {
                a == c && b == d
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

mod regex_text {
    use regex::Regex;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(regex: &Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(regex.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Regex, D::Error> {
        let text = String::deserialize(d)?;
        Regex::new(&text)
            .map_err(|err| serde::de::Error::custom(format!("bad regex {text:?}: {err}")))
    }
}

/// What a [`Rule`] does at the places it selects; see [`Spec`] for the table of actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The value changes from run to run (ids, timestamps): only its presence is checked.
    Volatile {
        /// The snapshot placeholder; `[<last key of the path>]` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<String>,
    },
    /// The value is not compared and not snapshotted.
    Ignore,
    /// The value is checked by a matcher instead of by equality.
    Match {
        /// The check.
        matcher: Matcher,
    },
}

/// One rule of a [`Spec`]: where, for which target, and what to do.
///
/// In JSON: `{"path": "**.id", "action": "volatile"}`, optionally with `"service"`, `"request"`,
/// `"placeholder"` (volatile) or `"matcher"` (match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleFields")]
pub struct Rule {
    /// The places the rule selects, relative to the body.
    pub path: PathPattern,
    /// Only bodies of calls to this service, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Only bodies of this request type (wire name), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// What the rule does.
    #[serde(flatten)]
    pub action: Action,
}

/// How a rule is read from JSON: every key spelled out, unknown keys refused (a misspelt
/// `"servce"` must not silently turn a scoped rule into one for every service).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    path: PathPattern,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    request: Option<String>,
    action: String,
    #[serde(default)]
    placeholder: Option<String>,
    #[serde(default)]
    matcher: Option<Matcher>,
}

impl TryFrom<RuleFields> for Rule {
    type Error = String;

    fn try_from(fields: RuleFields) -> Result<Rule, String> {
        let misplaced = |key: &str| format!("`{key}` does not go with action `{}`", fields.action);
        let action = match fields.action.as_str() {
            "volatile" if fields.matcher.is_some() => return Err(misplaced("matcher")),
            "volatile" => Action::Volatile {
                placeholder: fields.placeholder,
            },
            "ignore" if fields.matcher.is_some() => return Err(misplaced("matcher")),
            "ignore" if fields.placeholder.is_some() => return Err(misplaced("placeholder")),
            "ignore" => Action::Ignore,
            "match" if fields.placeholder.is_some() => return Err(misplaced("placeholder")),
            "match" => Action::Match {
                matcher: fields.matcher.ok_or("action `match` needs a `matcher`")?,
            },
            other => {
                return Err(format!(
                    "unknown action `{other}`, expected one of `volatile`, `ignore`, `match`"
                ));
            }
        };
        Ok(Rule {
            path: fields.path,
            service: fields.service,
            request: fields.request,
            action,
        })
    }
}

impl Rule {
    /// A rule with `action` at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn new(path: &str, action: Action) -> Result<Rule, NanoError> {
        Ok(Rule {
            path: PathPattern::parse(path)?,
            service: None,
            request: None,
            action,
        })
    }

    /// A volatile rule at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn volatile(path: &str) -> Result<Rule, NanoError> {
        Rule::new(path, Action::Volatile { placeholder: None })
    }

    /// An ignore rule at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn ignore(path: &str) -> Result<Rule, NanoError> {
        Rule::new(path, Action::Ignore)
    }

    /// A match rule at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn matching(path: &str, matcher: Matcher) -> Result<Rule, NanoError> {
        Rule::new(path, Action::Match { matcher })
    }

    /// Restricts the rule to bodies of calls to `service`.
    #[must_use]
    pub fn for_service(mut self, service: impl Into<String>) -> Rule {
        self.service = Some(service.into());
        self
    }

    /// Restricts the rule to bodies of the request type `request` (its wire name).
    #[must_use]
    pub fn for_request(mut self, request: impl Into<String>) -> Rule {
        self.request = Some(request.into());
        self
    }

    /// Sets the snapshot placeholder of a volatile rule (other rules are unchanged).
    #[must_use]
    pub fn with_placeholder(mut self, text: impl Into<String>) -> Rule {
        if let Action::Volatile { placeholder } = &mut self.action {
            *placeholder = Some(text.into());
        }
        self
    }

    fn applies_to(&self, target: &Target) -> bool {
        self.service.as_ref().is_none_or(|s| *s == target.service)
            && self.request.as_ref().is_none_or(|r| *r == target.request)
    }

    fn volatile_placeholder(&self) -> String {
        match &self.action {
            Action::Volatile {
                placeholder: Some(text),
            } => text.clone(),
            _ => format!("[{}]", self.path.last_key().unwrap_or("volatile")),
        }
    }
}

/// The one set of matching and redaction rules for snapshots, mock expectations, parity checks
/// and scenario replay.
///
/// A spec is a list of [`Rule`]s. Each rule selects places in a message body (a request, a
/// response, or an error's `{"code", "message"}`) with a [`PathPattern`], optionally only for one
/// service and/or request type, and says what to do there:
///
/// | action | in comparisons | in snapshots |
/// |---|---|---|
/// | [`Action::Volatile`] | any value passes, but it must be present on both sides | replaced by a placeholder such as `"[request_id]"` |
/// | [`Action::Ignore`] | not compared at all, present or not | removed |
/// | [`Action::Match`] | both sides must satisfy the [`Matcher`] | replaced by the matcher's placeholder when it matches, kept otherwise so the snapshot diff shows the offending value |
///
/// Secrets — the values of fields such as `password`, `token` or `api_key`
/// ([`nano_record::Redaction`]) — are never shown: they become `"[redacted]"` in snapshots,
/// diffs and mismatch reports. In a comparison, a secret the expectation holds only as that
/// placeholder (a redacted recording) is compared by its presence; one it writes out is
/// compared by value. [`keep_secrets`](Spec::keep_secrets) is the opt-in of a test that needs
/// them shown, and compares every value as it is.
///
/// The last rule that selects a place wins, so a rule added later overrides an earlier one (and
/// user rules override the built-in defaults). The built-in defaults make request ids and common
/// timestamp fields volatile; see [`Spec::default_rules`].
///
/// A spec is a plain value: build it in code or load it from JSON, and store it next to the
/// snapshots or scenarios it governs.
///
/// ```
/// use nano_test::{Spec, Target};
/// use serde_json::json;
///
/// let spec = Spec::from_json(r#"{
///     "rules": [
///         {"path": "id", "action": "match", "matcher": {"regex": "^u-[0-9]+$"}},
///         {"path": "**.trace", "action": "ignore"},
///         {"path": "age", "action": "match", "matcher": {"range": {"min": 0, "max": 150}},
///          "service": "users"}
///     ]
/// }"#)?;
/// let target = Target::new("users", "users.Get");
/// let expected = json!({"id": "u-1", "age": 30, "trace": "a"});
/// assert!(spec.compare(&target, &expected, &json!({"id": "u-77", "age": 41})).is_ok());
///
/// let err = spec.compare(&target, &expected, &json!({"id": "x", "age": 41})).unwrap_err();
/// assert_eq!(err.mismatches[0].path, "$.id");
/// assert_eq!(spec.redact(&target, &expected), json!({"id": "[matches ^u-[0-9]+$]", "age": "[number in 0..=150]"}));
/// # Ok::<(), nano::NanoError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Whether the built-in [default rules](Spec::default_rules) come before `rules`.
    #[serde(default = "yes")]
    pub defaults: bool,
    /// The rules, in order; later rules win.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Whether secrets are kept (compared by value, shown in snapshots and diffs) instead of
    /// redacted; `false` unless a test opts in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_secrets: bool,
}

fn yes() -> bool {
    true
}

impl Default for Spec {
    /// The default rules and nothing else.
    fn default() -> Self {
        Spec::new()
    }
}

impl Spec {
    /// The default rules and nothing else.
    pub fn new() -> Self {
        Spec {
            defaults: true,
            rules: Vec::new(),
            keep_secrets: false,
        }
    }

    /// No rules at all, not even the defaults: every value is compared exactly.
    pub fn empty() -> Self {
        Spec {
            defaults: false,
            rules: Vec::new(),
            keep_secrets: false,
        }
    }

    /// The same spec, keeping secrets: compared by value and shown in snapshots and diffs.
    #[must_use]
    pub fn keep_secrets(mut self) -> Spec {
        self.keep_secrets = true;
        self
    }

    /// How this spec redacts secrets.
    pub fn secrets(&self) -> nano_record::Redaction {
        if self.keep_secrets {
            nano_record::Redaction::keep_secrets()
        } else {
            nano_record::Redaction::default()
        }
    }

    /// The built-in rules: request ids (`request_id`, `req_id`) and common timestamp fields
    /// (`timestamp`, `created_at`, `updated_at`) are volatile wherever they appear.
    pub fn default_rules() -> Vec<Rule> {
        [
            "request_id",
            "req_id",
            "timestamp",
            "created_at",
            "updated_at",
        ]
        .into_iter()
        .map(|key| Rule {
            path: PathPattern::parse(&format!("**.{key}"))
                .unwrap_or_else(|_| unreachable!("built-in patterns parse")),
            service: None,
            request: None,
            action: Action::Volatile { placeholder: None },
        })
        .collect()
    }

    /// Loads a spec from JSON, e.g. `{"rules": [{"path": "**.id", "action": "volatile"}]}`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` naming what does not parse (JSON, a path pattern, a regex, an unknown field).
    pub fn from_json(json: &str) -> Result<Spec, NanoError> {
        serde_json::from_str(json)
            .map_err(|err| NanoError::new(codes::BAD_SPEC, format!("invalid spec: {err}")))
    }

    /// The spec as pretty-printed JSON, the form [`from_json`](Spec::from_json) reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| unreachable!("a spec always encodes"))
    }

    /// Adds a rule; it wins over every rule added before.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Spec {
        self.rules.push(rule);
        self
    }

    /// Adds a volatile rule at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn volatile(self, path: &str) -> Result<Spec, NanoError> {
        Ok(self.rule(Rule::volatile(path)?))
    }

    /// Adds an ignore rule at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn ignore(self, path: &str) -> Result<Spec, NanoError> {
        Ok(self.rule(Rule::ignore(path)?))
    }

    /// Adds a match rule at `path`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the path pattern does not parse.
    pub fn matching(self, path: &str, matcher: Matcher) -> Result<Spec, NanoError> {
        Ok(self.rule(Rule::matching(path, matcher)?))
    }
}
