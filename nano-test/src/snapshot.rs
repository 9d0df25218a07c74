//! Snapshot helpers over insta: responses, errors and call trees, redacted by a [`Spec`]. The
//! table of what each value turns into is on [`snapshot!`](crate::snapshot!), where readers look.

use std::collections::HashMap;

use nano::{AnyResponse, NanoError, Outcome};
use serde::Serialize;
use serde_json::Value;

use crate::spec::{Spec, Target, TreeSnapshot};
use crate::{CallNode, CallOutcome};

/// What goes into a snapshot: redacted JSON (call trees keep their reading order of fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Snapshot(Content);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Content {
    Value(Value),
    Tree(TreeSnapshot),
    Trees(Vec<TreeSnapshot>),
}

impl From<Value> for Snapshot {
    fn from(value: Value) -> Self {
        Snapshot(Content::Value(value))
    }
}

impl Snapshot {
    /// The snapshot as a JSON value (object keys sorted).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| unreachable!("a snapshot always encodes"))
    }
}

/// A value that knows how it goes into a snapshot. Implemented for errors, erased responses,
/// outcomes and call trees; typed responses and other `Serialize` values are snapshotted as
/// their JSON without implementing it.
pub trait ToSnapshot {
    /// The redacted JSON to snapshot.
    ///
    /// # Errors
    ///
    /// `S-ENCODE` when the value does not encode to JSON.
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError>;
}

impl ToSnapshot for NanoError {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        Ok(spec
            .redact_outcome(&Target::unknown(), &CallOutcome::from_error(self))
            .into())
    }
}

impl ToSnapshot for AnyResponse {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        Ok(spec
            .redact(&Target::unknown(), &self.to_json_value()?)
            .into())
    }
}

impl ToSnapshot for Outcome {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        Ok(spec
            .redact_outcome(&Target::unknown(), &CallOutcome::from_outcome(self))
            .into())
    }
}

impl ToSnapshot for CallOutcome {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        Ok(spec.redact_outcome(&Target::unknown(), self).into())
    }
}

impl ToSnapshot for CallNode {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        Ok(Snapshot(Content::Tree(
            spec.tree_snapshot(self, &mut HashMap::new()),
        )))
    }
}

impl ToSnapshot for [CallNode] {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        // One numbering of request ids across the trees shows which trees shared an id.
        let mut ids = HashMap::new();
        Ok(Snapshot(Content::Trees(
            self.iter()
                .map(|tree| spec.tree_snapshot(tree, &mut ids))
                .collect(),
        )))
    }
}

impl ToSnapshot for Vec<CallNode> {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        self.as_slice().to_snapshot(spec)
    }
}

impl<T: ToSnapshot> ToSnapshot for Option<T> {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        match self {
            Some(value) => value.to_snapshot(spec),
            None => Ok(Value::Null.into()),
        }
    }
}

impl<T: ToSnapshot + ?Sized> ToSnapshot for &T {
    fn to_snapshot(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
        (**self).to_snapshot(spec)
    }
}

/// The snapshot of a typed call's result: `response: <body>` or `error: {code, message}`.
///
/// # Errors
///
/// `S-ENCODE` when the response does not encode.
pub(crate) fn result_snapshot<T: Serialize>(
    result: &Result<T, NanoError>,
    spec: &Spec,
) -> Result<Snapshot, NanoError> {
    Ok(spec
        .redact_outcome(&Target::unknown(), &CallOutcome::from_result(result))
        .into())
}

/// The snapshot of any serialisable value: its JSON, redacted.
///
/// # Errors
///
/// `S-ENCODE` when the value does not encode.
pub(crate) fn value_snapshot<T: Serialize + ?Sized>(
    value: &T,
    spec: &Spec,
) -> Result<Snapshot, NanoError> {
    let json = serde_json::to_value(value).map_err(|err| {
        NanoError::new(
            nano::codes::ENCODE,
            format!("cannot encode the value: {err}"),
        )
    })?;
    Ok(spec.redact(&Target::unknown(), &json).into())
}

/// Picks how a value goes into a snapshot, at compile time, for the snapshot macros: a typed
/// result first, then [`ToSnapshot`], then `Serialize` (autoref specialisation: each level is
/// one reference further away from the probe the macro builds).
#[doc(hidden)]
pub mod probe {
    use super::*;

    pub struct Probe<'a, T: ?Sized>(pub &'a T);

    pub trait ViaResult {
        fn snapshot_value(&self, spec: &Spec) -> Result<Snapshot, NanoError>;
    }
    impl<T: Serialize> ViaResult for &&Probe<'_, Result<T, NanoError>> {
        fn snapshot_value(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
            result_snapshot(self.0, spec)
        }
    }

    pub trait ViaToSnapshot {
        fn snapshot_value(&self, spec: &Spec) -> Result<Snapshot, NanoError>;
    }
    impl<T: ToSnapshot + ?Sized> ViaToSnapshot for &Probe<'_, T> {
        fn snapshot_value(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
            self.0.to_snapshot(spec)
        }
    }

    pub trait ViaSerialize {
        fn snapshot_value(&self, spec: &Spec) -> Result<Snapshot, NanoError>;
    }
    impl<T: Serialize + ?Sized> ViaSerialize for Probe<'_, T> {
        fn snapshot_value(&self, spec: &Spec) -> Result<Snapshot, NanoError> {
            value_snapshot(self.0, spec)
        }
    }

    /// Settings that keep the snapshot header readable: the macro's own expression would show
    /// as an internal variable, so the user's expression becomes the description instead.
    pub fn settings(expression: &str) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.set_omit_expression(true);
        settings.set_description(expression);
        settings
    }
}

/// The redacted JSON of a value as the snapshot macros see it.
#[doc(hidden)]
#[macro_export]
macro_rules! __snapshot_value {
    ($value:expr, $spec:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::snapshot_probe::{
            ViaResult as _, ViaSerialize as _, ViaToSnapshot as _,
        };
        let spec: &$crate::Spec = $spec;
        match (&&&$crate::__private::snapshot_probe::Probe(&$value)).snapshot_value(spec) {
            ::std::result::Result::Ok(value) => value,
            ::std::result::Result::Err(err) => {
                ::std::panic!("cannot snapshot {}: {err}", ::std::stringify!($value))
            }
        }
    }};
}

/// Asserts a YAML snapshot of a response, an error, an outcome or a call tree, redacted by a
/// [`Spec`](crate::Spec) (the default spec unless one is given; call-tree bodies with each call's
/// own service and request, so scoped rules apply). What goes into the snapshot depends on the
/// value:
///
/// | value | snapshot |
/// |---|---|
/// | `Result<T, NanoError>` (a typed call's result), [`Outcome`](nano::Outcome) | `response: <body>` or `error: {code, message}` |
/// | [`NanoError`](nano::NanoError) | `error: {code, message}` (message = the flattened chain) |
/// | [`AnyResponse`](nano::AnyResponse), any `T: Serialize` (a typed response) | the body |
/// | [`CallNode`](crate::CallNode) (a call tree), `Vec<CallNode>`, `Option<CallNode>` | caller, service, request, `[req-N]` ids, body, outcome, calls |
///
/// Forms: `snapshot!(value)`, `snapshot!(value, &spec)`, `snapshot!("name", value)`,
/// `snapshot!("name", value, &spec)`, and inline `snapshot!(value, @"...")`,
/// `snapshot!(value, &spec, @"...")`. Snapshots live in `snapshots/` next to the test file, as
/// insta stores them; review new or changed ones with `cargo insta review`.
///
/// ```
/// use nano::NanoError;
///
/// let err = NanoError::wrap(NanoError::not_found("no record for 42"), "svc1 failure");
/// nano_test::snapshot!(err, @r#"
/// error:
///   code: C-NOT-FOUND
///   message: "svc1 failure :: no record for 42"
/// "#);
/// ```
///
/// # Panics
///
/// When the value differs from the stored snapshot (that is the assertion), or does not encode.
#[macro_export]
macro_rules! snapshot {
    ($value:expr, @$inline:literal $(,)?) => {
        $crate::snapshot!($value, &$crate::Spec::default(), @$inline)
    };
    ($value:expr, $spec:expr, @$inline:literal $(,)?) => {{
        let snapshot = $crate::__snapshot_value!($value, $spec);
        $crate::__private::snapshot_probe::settings(::std::stringify!($value)).bind(|| {
            $crate::insta::assert_yaml_snapshot!(snapshot, @$inline);
        });
    }};
    ($name:literal, $value:expr $(,)?) => {
        $crate::snapshot!($name, $value, &$crate::Spec::default())
    };
    ($name:literal, $value:expr, $spec:expr $(,)?) => {{
        let snapshot = $crate::__snapshot_value!($value, $spec);
        $crate::__private::snapshot_probe::settings(::std::stringify!($value)).bind(|| {
            $crate::insta::assert_yaml_snapshot!($name, snapshot);
        });
    }};
    ($value:expr $(,)?) => {
        $crate::snapshot!($value, &$crate::Spec::default())
    };
    ($value:expr, $spec:expr $(,)?) => {{
        let snapshot = $crate::__snapshot_value!($value, $spec);
        $crate::__private::snapshot_probe::settings(::std::stringify!($value)).bind(|| {
            $crate::insta::assert_yaml_snapshot!(snapshot);
        });
    }};
}

/// Like [`snapshot!`](crate::snapshot!), in JSON.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String, pub request_id: String }
/// let resp = Resp { value: "svc1_x".into(), request_id: "6f1c0e5d".into() };
/// nano_test::snapshot_json!(resp, @r#"
/// {
///   "request_id": "[request_id]",
///   "value": "svc1_x"
/// }
/// "#);
/// ```
///
/// # Panics
///
/// As [`snapshot!`](crate::snapshot!).
#[macro_export]
macro_rules! snapshot_json {
    ($value:expr, @$inline:literal $(,)?) => {
        $crate::snapshot_json!($value, &$crate::Spec::default(), @$inline)
    };
    ($value:expr, $spec:expr, @$inline:literal $(,)?) => {{
        let snapshot = $crate::__snapshot_value!($value, $spec);
        $crate::__private::snapshot_probe::settings(::std::stringify!($value)).bind(|| {
            $crate::insta::assert_json_snapshot!(snapshot, @$inline);
        });
    }};
    ($name:literal, $value:expr $(,)?) => {
        $crate::snapshot_json!($name, $value, &$crate::Spec::default())
    };
    ($name:literal, $value:expr, $spec:expr $(,)?) => {{
        let snapshot = $crate::__snapshot_value!($value, $spec);
        $crate::__private::snapshot_probe::settings(::std::stringify!($value)).bind(|| {
            $crate::insta::assert_json_snapshot!($name, snapshot);
        });
    }};
    ($value:expr $(,)?) => {
        $crate::snapshot_json!($value, &$crate::Spec::default())
    };
    ($value:expr, $spec:expr $(,)?) => {{
        let snapshot = $crate::__snapshot_value!($value, $spec);
        $crate::__private::snapshot_probe::settings(::std::stringify!($value)).bind(|| {
            $crate::insta::assert_json_snapshot!(snapshot);
        });
    }};
}
