//! JSON paths: the concrete place of a value (`$.items[0].id`) and the patterns rules select
//! values with (`**.request_id`, `items[*].id`).

use std::fmt::{self, Write as _};
use std::str::FromStr;

use nano::NanoError;
use serde::{Deserialize, Serialize};

use crate::codes;

/// One step into a JSON value: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Renders a concrete path the way patterns are written: `$`, `$.value`, `$.items[0]["a.b"]`.
pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut text = String::from("$");
    for segment in path {
        match segment {
            Segment::Key(key) if is_plain_key(key) => {
                let _ = write!(text, ".{key}");
            }
            Segment::Key(key) => {
                let quoted = serde_json::Value::String(key.clone()).to_string();
                let _ = write!(text, "[{quoted}]");
            }
            Segment::Index(index) => {
                let _ = write!(text, "[{index}]");
            }
        }
    }
    text
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key != "*"
        && key != "**"
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// `*`: any one key or index.
    AnyOne,
    /// `[*]`: any one array index.
    AnyIndex,
    /// `**`: any number of steps, none included.
    AnyDepth,
}

/// A pattern that selects places in a JSON value.
///
/// Syntax: an optional leading `$`, then steps: `.key` (the first key may omit the dot), `[3]` an
/// array index, `["key with.dots"]` a quoted key, `*` any one key or index, `[*]` any one index,
/// `**` any number of steps (also none). Examples: `value`, `$.user.id`, `items[*].id`,
/// `**.request_id` (a `request_id` at any depth), `$` (the whole value).
///
/// ```
/// use nano_test::PathPattern;
///
/// let pattern: PathPattern = "**.request_id".parse()?;
/// assert_eq!(pattern.as_str(), "**.request_id");
/// assert!("items[".parse::<PathPattern>().is_err());
/// # Ok::<(), nano::NanoError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathPattern {
    text: String,
    steps: Vec<Step>,
}

impl PathPattern {
    /// Parses a pattern.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` naming the pattern and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, NanoError> {
        let steps = parse_steps(text).map_err(|why| {
            NanoError::new(codes::BAD_SPEC, format!("bad path pattern {text:?}: {why}"))
        })?;
        Ok(PathPattern {
            text: text.to_owned(),
            steps,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern selects the value at `path`.
    pub fn matches(&self, path: &[Segment]) -> bool {
        matches_steps(&self.steps, path)
    }

    /// The last literal key of the pattern, used to name placeholders (`[request_id]`).
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.steps.last() {
            Some(Step::Key(key)) => Some(key),
            _ => None,
        }
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for PathPattern {
    type Err = NanoError;
    fn from_str(text: &str) -> Result<Self, NanoError> {
        PathPattern::parse(text)
    }
}

impl TryFrom<String> for PathPattern {
    type Error = NanoError;
    fn try_from(text: String) -> Result<Self, NanoError> {
        PathPattern::parse(&text)
    }
}

impl From<PathPattern> for String {
    fn from(pattern: PathPattern) -> String {
        pattern.text
    }
}

fn matches_steps(steps: &[Step], path: &[Segment]) -> bool {
    match steps.split_first() {
        None => path.is_empty(),
        Some((Step::AnyDepth, rest)) => {
            (0..=path.len()).any(|skip| matches_steps(rest, &path[skip..]))
        }
        Some((step, rest)) => match path.split_first() {
            None => false,
            Some((segment, tail)) => step_matches(step, segment) && matches_steps(rest, tail),
        },
    }
}

fn step_matches(step: &Step, segment: &Segment) -> bool {
    match (step, segment) {
        (Step::AnyOne, _) => true,
        (Step::AnyIndex, Segment::Index(_)) => true,
        (Step::Key(a), Segment::Key(b)) => a == b,
        (Step::Index(a), Segment::Index(b)) => a == b,
        _ => false,
    }
}

fn parse_steps(text: &str) -> Result<Vec<Step>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the pattern is empty".into());
    }
    match text.strip_prefix('$') {
        Some(rest) => parse_after_root(rest),
        None if text.starts_with('[') => parse_after_root(text),
        // A pattern without `$` starts with a bare key, as if it were `$.key`.
        None => parse_after_root(&format!(".{text}")),
    }
}

fn parse_after_root(mut rest: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            steps.push(match key {
                "" => return Err("a key is empty".into()),
                key if key.contains([']', '"']) => {
                    return Err(format!("unexpected character in key {key:?}"));
                }
                "*" => Step::AnyOne,
                "**" => Step::AnyDepth,
                key => Step::Key(key.to_owned()),
            });
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            if after.starts_with('"') {
                let (key, used) = parse_quoted(after)?;
                steps.push(Step::Key(key));
                rest = after[used..]
                    .strip_prefix(']')
                    .ok_or("a quoted key is not followed by `]`")?;
            } else {
                let end = after.find(']').ok_or("`[` is not closed")?;
                let inner = after[..end].trim();
                steps.push(if inner == "*" {
                    Step::AnyIndex
                } else {
                    Step::Index(
                        inner
                            .parse()
                            .map_err(|_| format!("{inner:?} is not an index or `*`"))?,
                    )
                });
                rest = &after[end + 1..];
            }
        } else {
            return Err(format!("expected `.` or `[` at {rest:?}"));
        }
    }
    Ok(steps)
}

/// Parses a JSON string literal at the start of `text`; returns it and the bytes it used.
fn parse_quoted(text: &str) -> Result<(String, usize), String> {
    let mut escaped = false;
    for (at, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                let literal = &text[..=at];
                let key: String = serde_json::from_str(literal)
                    .map_err(|err| format!("bad quoted key {literal}: {err}"))?;
                return Ok((key, at + 1));
            }
            _ => escaped = false,
        }
    }
    Err("a quoted key is not closed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<Segment> {
        // Test helper: builds a concrete path from a pattern without wildcards.
        PathPattern::parse(text)
            .unwrap()
            .steps
            .into_iter()
            .map(|step| match step {
                Step::Key(key) => Segment::Key(key),
                Step::Index(index) => Segment::Index(index),
                other => panic!("wildcard {other:?} in a concrete path"),
            })
            .collect()
    }

    fn check(pattern: &str, concrete: &str, expected: bool) {
        let pattern = PathPattern::parse(pattern).unwrap();
        assert_eq!(
            pattern.matches(&path(concrete)),
            expected,
            "{pattern} vs {concrete}"
        );
    }

    #[test]
    fn patterns_select_the_places_they_name() {
        check("value", "$.value", true);
        check("$.value", "value", true);
        check("value", "$.other", false);
        check("**.request_id", "request_id", true);
        check("**.request_id", "a.b[3].request_id", true);
        check("**.request_id", "a.request_id.x", false);
        check("items[*].id", "items[2].id", true);
        check("items[*].id", "items.x.id", false);
        check("items.*.id", "items[2].id", true);
        check("items[1]", "items[1]", true);
        check("items[1]", "items[2]", false);
        check("$", "$", true);
        check("$", "a", false);
        check(r#"["a.b"].c"#, r#"$["a.b"].c"#, true);
        check("**", "a[1].b", true);
    }

    #[test]
    fn bad_patterns_are_coded_errors() {
        for bad in ["", "a..b", "a[", "a[x]", "a.", r#"["open"#, "a]b"] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert_eq!(err.code(), codes::BAD_SPEC, "{bad}");
            assert!(err.message().contains("bad path pattern"), "{err}");
        }
    }

    #[test]
    fn rendered_paths_parse_back_to_themselves() {
        let concrete = vec![
            Segment::Key("items".into()),
            Segment::Index(0),
            Segment::Key("a.b".into()),
        ];
        let text = render_path(&concrete);
        assert_eq!(text, r#"$.items[0]["a.b"]"#);
        assert!(PathPattern::parse(&text).unwrap().matches(&concrete));
        assert_eq!(render_path(&[]), "$");
    }
}
