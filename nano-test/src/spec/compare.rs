//! Comparing and redacting JSON values under a [`Spec`], and rendering what differs.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::path::{Segment, render_path};
use super::{Action, Rule, Spec, Target};

static DEFAULT_RULES: LazyLock<Vec<Rule>> = LazyLock::new(Spec::default_rules);

/// How one place differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// Both sides have a value and they are not equal.
    Different,
    /// The expected side has a value, the actual side none.
    Missing,
    /// The actual side has a value the expected side does not.
    Unexpected,
    /// A value does not satisfy the matcher of a match rule.
    NotMatched {
        /// The matcher, as text (`matches ^u-[0-9]+$`).
        matcher: String,
    },
}

/// One field-level difference: where, how, and both values (`None` when absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The rendered path, e.g. `$.items[0].id`.
    pub path: String,
    /// How the place differs.
    pub kind: MismatchKind,
    /// The expected value, if there is one.
    pub expected: Option<Value>,
    /// The actual value, if there is one.
    pub actual: Option<Value>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |value: &Option<Value>| match value {
            Some(value) => value.to_string(),
            None => "nothing".to_owned(),
        };
        match &self.kind {
            MismatchKind::Different => write!(
                f,
                "{}: expected {}, found {}",
                self.path,
                show(&self.expected),
                show(&self.actual)
            ),
            MismatchKind::Missing => {
                write!(
                    f,
                    "{}: missing (expected {})",
                    self.path,
                    show(&self.expected)
                )
            }
            MismatchKind::Unexpected => {
                write!(
                    f,
                    "{}: unexpected (found {})",
                    self.path,
                    show(&self.actual)
                )
            }
            MismatchKind::NotMatched { matcher } => write!(
                f,
                "{}: found {}, which the matcher `{matcher}` rejects (recorded: {})",
                self.path,
                show(&self.actual),
                show(&self.expected)
            ),
        }
    }
}

/// Every difference between an expected and an actual value, with a rendered diff; the error of
/// [`Spec::compare`].
///
/// `Display` names the target (service and request), lists each [`Mismatch`] and ends with a
/// unified diff of both values as pretty JSON, redacted by the same spec so volatile fields do not
/// show up as noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatches {
    /// What was compared.
    pub target: Target,
    /// What is being compared, e.g. `response` or `request`; empty when not said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// The field-level differences, in document order.
    pub mismatches: Vec<Mismatch>,
    /// A unified diff (`--- expected`, `+++ actual`) of the redacted values.
    pub diff: String,
}

impl Mismatches {
    /// Names what is being compared (`request`, `response`), shown in the message.
    #[must_use]
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }
}

impl fmt::Display for Mismatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.mismatches.len();
        let fields = if count == 1 {
            "field differs"
        } else {
            "fields differ"
        };
        if self.subject.is_empty() {
            writeln!(f, "{}: {count} {fields}", self.target)?;
        } else {
            writeln!(f, "{} of {}: {count} {fields}", self.subject, self.target)?;
        }
        for mismatch in &self.mismatches {
            writeln!(f, "  {mismatch}")?;
        }
        f.write_str(&self.diff)
    }
}

impl std::error::Error for Mismatches {}

impl Spec {
    /// Compares `actual` with `expected`, both bodies of `target`, under the spec's rules.
    ///
    /// # Errors
    ///
    /// Every difference, as [`Mismatches`] with a rendered diff.
    pub fn compare(
        &self,
        target: &Target,
        expected: &Value,
        actual: &Value,
    ) -> Result<(), Mismatches> {
        let secrets = self.secrets();
        // A secret a recording redacted is compared by its presence; one written out in the
        // expectation, by its value. Either way no value is shown unless the spec keeps secrets.
        let actual = &align_redacted(&secrets, expected, actual);
        let rules = self.active_rules(target);
        let mut found = Vec::new();
        let mut path = Vec::new();
        compare_at(&rules, &mut path, Some(expected), Some(actual), &mut found);
        if found.is_empty() {
            return Ok(());
        }
        for mismatch in &mut found {
            hide_secrets(&secrets, mismatch);
        }
        Err(Mismatches {
            target: target.clone(),
            subject: String::new(),
            mismatches: found,
            diff: self.diff(target, expected, actual),
        })
    }

    /// `value` as it goes into a snapshot: secrets redacted (unless the spec keeps them),
    /// volatile places replaced by placeholders, ignored places removed, values that satisfy a
    /// matcher replaced by its placeholder.
    pub fn redact(&self, target: &Target, value: &Value) -> Value {
        let value = &self.secrets().redacted(value);
        let rules = self.active_rules(target);
        let mut path = Vec::new();
        redact_at(&rules, &mut path, value).unwrap_or(Value::Null)
    }

    /// A unified diff of the redacted, pretty-printed values (empty when they render the same).
    pub fn diff(&self, target: &Target, expected: &Value, actual: &Value) -> String {
        text_diff(
            &pretty(&self.redact(target, expected)),
            &pretty(&self.redact(target, actual)),
        )
    }

    fn active_rules(&self, target: &Target) -> Vec<&Rule> {
        let defaults: &[Rule] = if self.defaults { &DEFAULT_RULES } else { &[] };
        defaults
            .iter()
            .chain(&self.rules)
            .filter(|rule| rule.applies_to(target))
            .collect()
    }
}

/// `actual` with the value of every secret field replaced by the placeholder where `expected`
/// holds the placeholder at the same place (a redacted recording): such a secret is compared by
/// its presence. A spec that keeps secrets compares every value as it is.
fn align_redacted(secrets: &nano_record::Redaction, expected: &Value, actual: &Value) -> Value {
    let mut aligned = actual.clone();
    if secrets.keeps_everything() {
        return aligned;
    }
    let mut stack = vec![(expected, &mut aligned)];
    while let Some((expected, actual)) = stack.pop() {
        match (expected, actual) {
            (Value::Object(want), Value::Object(got)) => {
                for (key, child) in got.iter_mut() {
                    let Some(wanted) = want.get(key) else {
                        continue;
                    };
                    let redacted = wanted.as_str() == Some(nano_record::REDACTED);
                    if secrets.is_secret(key) && redacted {
                        if !child.is_null() && child.as_str() != Some("") {
                            *child = Value::String(nano_record::REDACTED.to_owned());
                        }
                    } else {
                        stack.push((wanted, child));
                    }
                }
            }
            (Value::Array(want), Value::Array(got)) => {
                stack.extend(want.iter().zip(got.iter_mut()));
            }
            _ => {}
        }
    }
    aligned
}

/// The values of a mismatch as a report may show them: a secret field's as the placeholder
/// (the found one marked as differing), secrets inside other values redacted.
fn hide_secrets(secrets: &nano_record::Redaction, mismatch: &mut Mismatch) {
    // Inside a secret (`$.credentials.pass`, `$.token[1]`) every place is secret too. Splitting
    // the rendered path may cut a quoted key that holds a `.` or `[`, which can only hide more.
    let inside_a_secret = mismatch
        .path
        .split(['.', '['])
        .map(|segment| segment.trim_end_matches(']').trim_matches('"'))
        .any(|key| secrets.is_secret(key));
    if inside_a_secret {
        let hide = |value: &mut Option<Value>, text: &str| {
            if let Some(value) = value.as_mut().filter(|v| !v.is_null()) {
                *value = Value::String(text.to_owned());
            }
        };
        hide(&mut mismatch.expected, nano_record::REDACTED);
        hide(&mut mismatch.actual, "[redacted, not the expected value]");
    } else {
        for value in [&mut mismatch.expected, &mut mismatch.actual]
            .into_iter()
            .flatten()
        {
            secrets.redact(value);
        }
    }
}

/// A unified diff of two texts with `expected` / `actual` headers, via `similar`.
pub(crate) fn text_diff(expected: &str, actual: &str) -> String {
    if expected == actual {
        return String::new();
    }
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

pub(crate) fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .unwrap_or_else(|_| unreachable!("a JSON value always encodes"));
    text.push('\n');
    text
}

fn rule_at<'r>(rules: &[&'r Rule], path: &[Segment]) -> Option<&'r Rule> {
    rules
        .iter()
        .rev()
        .find(|rule| rule.path.matches(path))
        .copied()
}

fn compare_at(
    rules: &[&Rule],
    path: &mut Vec<Segment>,
    expected: Option<&Value>,
    actual: Option<&Value>,
    found: &mut Vec<Mismatch>,
) {
    let mut report = |kind| {
        found.push(Mismatch {
            path: render_path(path),
            kind,
            expected: expected.cloned(),
            actual: actual.cloned(),
        });
    };
    let presence = match (expected, actual) {
        (Some(_), None) => Some(MismatchKind::Missing),
        (None, Some(_)) => Some(MismatchKind::Unexpected),
        _ => None,
    };
    match rule_at(rules, path).map(|rule| &rule.action) {
        Some(Action::Ignore) => {}
        Some(Action::Volatile { .. }) => {
            if let Some(kind) = presence {
                report(kind);
            }
        }
        Some(Action::Match { matcher }) => {
            if let Some(kind) = presence {
                report(kind);
            } else if [expected, actual]
                .into_iter()
                .flatten()
                .any(|value| !matcher.matches(value))
            {
                report(MismatchKind::NotMatched {
                    matcher: matcher.to_string(),
                });
            }
        }
        None => match (expected, actual) {
            (Some(Value::Object(e)), Some(Value::Object(a))) => {
                let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
                for key in keys {
                    path.push(Segment::Key(key.clone()));
                    compare_at(rules, path, e.get(key), a.get(key), found);
                    path.pop();
                }
            }
            (Some(Value::Array(e)), Some(Value::Array(a))) => {
                for index in 0..e.len().max(a.len()) {
                    path.push(Segment::Index(index));
                    compare_at(rules, path, e.get(index), a.get(index), found);
                    path.pop();
                }
            }
            (Some(e), Some(a)) if e != a => report(MismatchKind::Different),
            _ => {
                if let Some(kind) = presence {
                    report(kind);
                }
            }
        },
    }
}

/// The redacted value at `path`, or `None` when an ignore rule removes it.
fn redact_at(rules: &[&Rule], path: &mut Vec<Segment>, value: &Value) -> Option<Value> {
    match rule_at(rules, path) {
        Some(rule) => match &rule.action {
            Action::Ignore => None,
            Action::Volatile { .. } => Some(Value::String(rule.volatile_placeholder())),
            Action::Match { matcher } if matcher.matches(value) => {
                Some(Value::String(matcher.placeholder()))
            }
            Action::Match { .. } => Some(value.clone()),
        },
        None => Some(match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(key, item)| {
                        path.push(Segment::Key(key.clone()));
                        let redacted = redact_at(rules, path, item);
                        path.pop();
                        Some((key.clone(), redacted?))
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(index, item)| {
                        path.push(Segment::Index(index));
                        let redacted = redact_at(rules, path, item);
                        path.pop();
                        redacted
                    })
                    .collect(),
            ),
            other => other.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::Matcher;

    fn target() -> Target {
        Target::new("svc3", "svc3.Req")
    }

    #[test]
    fn equal_values_pass_and_differences_are_listed_in_document_order() {
        let spec = Spec::empty();
        let expected = json!({"a": 1, "b": [1, 2], "c": {"d": "x"}});
        assert!(spec.compare(&target(), &expected, &expected).is_ok());
        let actual = json!({"a": 2, "b": [1], "c": {"d": "x", "e": true}});
        let err = spec.compare(&target(), &expected, &actual).unwrap_err();
        let kinds: Vec<_> = err
            .mismatches
            .iter()
            .map(|m| (m.path.as_str(), m.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("$.a", MismatchKind::Different),
                ("$.b[1]", MismatchKind::Missing),
                ("$.c.e", MismatchKind::Unexpected),
            ]
        );
        let text = err.to_string();
        assert!(
            text.starts_with("service \"svc3\", request svc3.Req: 3 fields differ"),
            "{text}"
        );
        assert!(text.contains("$.a: expected 1, found 2"), "{text}");
        assert!(text.contains("--- expected\n+++ actual"), "{text}");
        assert!(text.contains("-  \"a\": 1,"), "{text}");
        assert!(text.contains("+  \"a\": 2,"), "{text}");
    }

    #[test]
    fn places_inside_a_secret_are_hidden_too() {
        let spec = Spec::default();
        let err = spec
            .compare(
                &target(),
                &json!({"token": ["a", "b-exp"], "credentials": {"pass": "p-exp"}}),
                &json!({"token": ["a", "c-act"], "credentials": {"pass": "q-act"}}),
            )
            .unwrap_err()
            .to_string();
        for value in ["b-exp", "c-act", "p-exp", "q-act"] {
            assert!(!err.contains(value), "{value} shown: {err}");
        }
        assert!(
            err.contains("$.token[1]") && err.contains("$.credentials.pass"),
            "{err}"
        );
    }

    #[test]
    fn volatile_fields_need_presence_only_and_default_rules_cover_request_ids() {
        let spec = Spec::new();
        let expected = json!({"request_id": "aaa", "v": 1});
        assert!(
            spec.compare(&target(), &expected, &json!({"request_id": "bbb", "v": 1}))
                .is_ok()
        );
        let err = spec
            .compare(&target(), &expected, &json!({"v": 1}))
            .unwrap_err();
        assert_eq!(err.mismatches[0].kind, MismatchKind::Missing);
        assert_eq!(
            spec.redact(&target(), &json!({"x": {"request_id": "abc"}})),
            json!({"x": {"request_id": "[request_id]"}})
        );
        // Without the defaults the id is compared like any other field.
        assert!(
            Spec::empty()
                .compare(&target(), &expected, &json!({"request_id": "bbb", "v": 1}))
                .is_err()
        );
    }

    #[test]
    fn ignored_fields_are_neither_compared_nor_snapshotted() {
        let spec = Spec::empty().ignore("**.trace").unwrap();
        assert!(
            spec.compare(&target(), &json!({"trace": 1, "v": 1}), &json!({"v": 1}))
                .is_ok()
        );
        assert_eq!(
            spec.redact(&target(), &json!({"trace": 1, "v": [{"trace": 2}]})),
            json!({"v": [{}]})
        );
    }

    #[test]
    fn matchers_check_both_sides_and_keep_offending_values_in_snapshots() {
        let spec = Spec::empty()
            .matching("id", Matcher::regex("^u-[0-9]+$").unwrap())
            .unwrap()
            .matching("n", Matcher::range(0.0, 10.0))
            .unwrap()
            .matching("s", Matcher::AnyString)
            .unwrap();
        let good = json!({"id": "u-1", "n": 3, "s": "x"});
        assert!(
            spec.compare(&target(), &good, &json!({"id": "u-22", "n": 10, "s": ""}))
                .is_ok()
        );
        let err = spec
            .compare(&target(), &good, &json!({"id": "x", "n": 11, "s": 1}))
            .unwrap_err();
        assert_eq!(err.mismatches.len(), 3);
        assert!(
            err.mismatches
                .iter()
                .all(|m| matches!(m.kind, MismatchKind::NotMatched { .. }))
        );
        assert_eq!(
            spec.redact(&target(), &json!({"id": "x", "n": 3, "s": "y"})),
            json!({"id": "x", "n": "[number in 0..=10]", "s": "[string]"})
        );
    }

    #[test]
    fn scoped_rules_apply_to_their_target_only_and_later_rules_win() {
        let spec = Spec::empty()
            .rule(Rule::ignore("v").unwrap().for_service("svc3"))
            .rule(Rule::ignore("w").unwrap().for_request("other.Req"));
        let (e, a) = (json!({"v": 1, "w": 1}), json!({"v": 2, "w": 2}));
        let err = spec.compare(&target(), &e, &a).unwrap_err();
        assert_eq!(err.mismatches.len(), 1);
        assert_eq!(err.mismatches[0].path, "$.w");
        let overridden = Spec::new().rule(Rule::new("**.request_id", Action::Ignore).unwrap());
        assert_eq!(
            overridden.redact(&target(), &json!({"request_id": 1})),
            json!({})
        );
    }

    #[test]
    fn specs_round_trip_through_json_and_bad_specs_are_coded_errors() {
        let spec = Spec::new()
            .rule(
                Rule::volatile("**.id")
                    .unwrap()
                    .with_placeholder("[id]")
                    .for_service("users"),
            )
            .matching("n", Matcher::range(None, 3.0))
            .unwrap();
        let again = Spec::from_json(&spec.to_json()).unwrap();
        assert_eq!(again, spec);
        for bad in [
            "{",
            r#"{"rules": [{"path": "a[", "action": "ignore"}]}"#,
            r#"{"rules": [{"path": "a", "action": "match", "matcher": {"regex": "("}}]}"#,
            r#"{"rules": [{"path": "a", "action": "explode"}]}"#,
            r#"{"rulez": []}"#,
        ] {
            let err = Spec::from_json(bad).unwrap_err();
            assert_eq!(err.code(), crate::codes::BAD_SPEC, "{bad}");
            assert!(err.message().starts_with("invalid spec: "), "{err}");
        }
    }
}
