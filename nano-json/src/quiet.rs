//! Decode errors that name what was wrong but not the value: serde quotes the offending value
//! ("invalid type: integer `98765432123`, expected a string"), and that value may be a password
//! or a token that then reaches an answer and a log. [`without_values`] drops it, keeping the
//! kind of value, what was expected and the position.

use serde::de::Error as _;

/// `err` with the quoted value removed from serde's "invalid type", "invalid value" and
/// "unknown variant" messages; every other error as it is.
pub(crate) fn without_values(err: serde_json::Error) -> serde_json::Error {
    if !err.is_data() {
        return err;
    }
    let text = err.to_string();
    // serde_json writes the position after the message, and reads it back from a custom
    // message written the same way, so the new error keeps `line()` and `column()`.
    let position =
        (err.line() > 0).then(|| format!(" at line {} column {}", err.line(), err.column()));
    let message = position
        .as_deref()
        .and_then(|position| text.strip_suffix(position))
        .unwrap_or(&text);
    match unquoted(message) {
        Some(message) => {
            serde_json::Error::custom(format_args!("{message}{}", position.unwrap_or_default()))
        }
        None => err,
    }
}

/// The message without its quoted value, or `None` when it quotes none this knows of.
fn unquoted(message: &str) -> Option<String> {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (kind, after) = split_value(rest)?;
            return Some(format!("{prefix}{kind}{after}"));
        }
    }
    let rest = message.strip_prefix("unknown variant `")?;
    // The variant is the client's text, written as it is; the names after it are the type's,
    // and contain neither ending.
    let end = rest
        .rfind("`, expected ")
        .or_else(|| rest.rfind("`, there are no variants"))?;
    Some(format!("unknown variant{}", &rest[end + 1..]))
}

/// Splits serde's description of an unexpected value (`integer `5``, `string "x"`, …) into
/// its kind and what follows the value; `None` when there is no value in it.
fn split_value(rest: &str) -> Option<(&str, &str)> {
    for kind in ["integer", "floating point", "boolean", "character"] {
        if let Some(value) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(" `")) {
            // A character may itself be a backquote; the others contain none.
            let skip = value.chars().next().map_or(0, char::len_utf8);
            let end = skip + value.get(skip..)?.find("`, expected ")?;
            return Some((kind, &value[end + 1..]));
        }
    }
    // A string is written as Rust's `Debug` does: in double quotes, with `"` and `\` escaped.
    let value = rest.strip_prefix("string \"")?;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(("string", &value[i + 1..])),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Form {
        name: String,
        age: u8,
        score: f32,
        flag: bool,
        letter: char,
        kind: Kind,
    }

    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        Plain,
    }

    fn message(json: &str) -> String {
        crate::from_slice::<Form>(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn values_are_named_by_kind_only() {
        let cases = [
            (
                r#"{"name":98765432123}"#,
                "invalid type: integer, expected a string at line 1 column 19",
            ),
            (
                r#"{"age":"s3cr\"et\\"}"#,
                "invalid type: string, expected u8 at line 1 column 19",
            ),
            (
                r#"{"age":300}"#,
                "invalid value: integer, expected u8 at line 1 column 10",
            ),
            (
                r#"{"age":-1.5}"#,
                "invalid type: floating point, expected u8 at line 1 column 11",
            ),
            (
                r#"{"name":true}"#,
                "invalid type: boolean, expected a string at line 1 column 12",
            ),
            (
                r#"{"letter":"ab`, expected "}"#,
                "invalid value: string, expected a character at line 1 column 26",
            ),
            (
                r#"{"kind":"hunter2`, expected x"}"#,
                "unknown variant, expected `Plain` at line 1 column 30",
            ),
            (
                r#"{"name":null,"name":"x"}"#,
                "duplicate field `name` at line 1 column 19",
            ),
        ];
        for (json, expected) in cases {
            let got = message(json);
            assert_eq!(got, expected, "{json}");
            for secret in ["98765432123", "s3cr", "300", "1.5", "true", "ab", "hunter2"] {
                assert!(!got.contains(secret), "{got}");
            }
        }
    }

    #[test]
    fn the_position_and_other_errors_stay() {
        let err = crate::from_slice::<Form>(br#"{"name":5}"#).unwrap_err();
        assert_eq!((err.line(), err.column(), err.is_data()), (1, 9, true));
        let syntax = crate::from_slice::<Form>(br#"{"name":"#).unwrap_err();
        assert!(syntax.is_eof(), "{syntax}");
        assert_eq!(unquoted("invalid type: sequence, expected a string"), None);
        assert_eq!(unquoted("missing field `x`"), None);
    }
}
