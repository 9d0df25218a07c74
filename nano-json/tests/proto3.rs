//! The proto3 rules of `nano_json::from_slice`, one per test.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, PartialEq, Deserialize)]
struct Inner {
    text: String,
    flag: bool,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
enum Kind {
    #[default]
    Unknown,
    Big,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
struct Msg {
    param: String,
    n: u32,
    i: i8,
    x: f32,
    list: Vec<String>,
    map: BTreeMap<String, u64>,
    inner: Inner,
    kind: Kind,
    maybe: Option<String>,
    value: serde_json::Value,
    #[serde(rename = "wireName")]
    renamed: String,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
struct Empty {}

#[derive(Debug, Default, PartialEq, Deserialize)]
struct Unit;

fn check<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    nano_json::from_slice(json.as_bytes()).map_err(|err| err.to_string())
}

#[test]
fn missing_fields_are_defaults_without_attributes() {
    assert_eq!(check::<Msg>("{}").unwrap(), Msg::default());
    assert_eq!(check::<Msg>(r#"{"inner":{}}"#).unwrap(), Msg::default());
}

#[test]
fn null_fields_are_defaults_at_any_depth() {
    let all_null = r#"{"param":null,"n":null,"i":null,"x":null,"list":null,"map":null,
        "inner":{"text":null,"flag":null},"kind":null,"maybe":null,"value":null,"wireName":null}"#;
    assert_eq!(check::<Msg>(all_null).unwrap(), Msg::default());
    assert_eq!(check::<Msg>(r#"{"inner":null}"#).unwrap(), Msg::default());
}

#[test]
fn values_decode_as_with_serde_json() {
    let msg = check::<Msg>(
        r#"{"param":"é ☃ 𝄞","n":7,"i":-3,"x":1.5,"list":["a"],"map":{"k":1},
        "inner":{"text":"t","flag":true},"kind":"Big","maybe":"m","value":[1,null],
        "wireName":"w","unknown":{"deep":[1]}}"#,
    )
    .unwrap();
    assert_eq!(msg.param, "é ☃ 𝄞");
    assert_eq!((msg.n, msg.i, msg.x), (7, -3, 1.5));
    assert_eq!(msg.list, ["a"]);
    assert_eq!(msg.map["k"], 1);
    assert_eq!(
        msg.inner,
        Inner {
            text: "t".into(),
            flag: true
        }
    );
    assert_eq!(msg.kind, Kind::Big);
    assert_eq!(msg.maybe.as_deref(), Some("m"));
    assert_eq!(msg.value, serde_json::json!([1, null]));
    assert_eq!(msg.renamed, "w");
    // Out of range is still an error.
    assert!(check::<Msg>(r#"{"i":300}"#).is_err());
    assert!(check::<Msg>(r#"{"n":"7"}"#).is_err());
}

#[test]
fn keys_match_fields_ignoring_ascii_case() {
    let msg = check::<Msg>(r#"{"PARAM":"x","Inner":{"TEXT":"t"},"WIRENAME":"w"}"#).unwrap();
    assert_eq!((msg.param.as_str(), msg.inner.text.as_str()), ("x", "t"));
    assert_eq!(msg.renamed, "w");
    // Map keys are data, not field names.
    let msg = check::<Msg>(r#"{"map":{"K":1}}"#).unwrap();
    assert_eq!(msg.map.keys().collect::<Vec<_>>(), ["K"]);
}

#[test]
fn duplicate_keys_are_refused_in_any_spelling() {
    let err = check::<Msg>(r#"{"param":"a","param":"b"}"#).unwrap_err();
    assert!(err.contains("duplicate field `param`"), "{err}");
    let err = check::<Msg>(r#"{"param":"a","Param":"b"}"#).unwrap_err();
    assert!(err.contains("duplicate field"), "{err}");
}

#[test]
fn a_message_is_an_object_never_an_array() {
    let err = check::<Msg>(r#"["x"]"#).unwrap_err();
    assert!(err.contains("expected a JSON object"), "{err}");
    assert!(check::<Msg>("[]").is_err());
    assert!(check::<Msg>(r#"{"inner":["t",true]}"#).is_err());
    assert!(check::<Empty>("[]").is_err());
    // Lists of messages are still lists.
    let list = check::<Vec<Inner>>(r#"[{"text":"a"},null]"#);
    assert!(list.is_err(), "a null element is not a message: {list:?}");
    assert_eq!(check::<Vec<Inner>>(r#"[{"text":"a"}]"#).unwrap().len(), 1);
}

#[test]
fn invalid_text_is_refused() {
    let bad_utf8 = nano_json::from_slice::<Msg>(b"{\"param\":\"\xff\"}");
    assert!(bad_utf8.is_err());
    assert!(check::<Msg>(r#"{"param":"\ud800"}"#).is_err());
    assert!(check::<Msg>(r#"{"param":"a"} x"#).is_err());
}

#[test]
fn the_empty_document_is_a_type_without_fields() {
    assert_eq!(check::<Empty>("").unwrap(), Empty {});
    assert_eq!(check::<Unit>(" \n").unwrap(), Unit);
    check::<()>("").unwrap();
    let err = check::<Msg>("").unwrap_err();
    assert!(err.contains("struct Msg has fields"), "{err}");
    assert!(check::<String>("").is_err());
    assert!(nano_json::has_no_fields::<Empty>());
    assert!(!nano_json::has_no_fields::<Msg>());
}
