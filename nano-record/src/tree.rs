//! The call-tree model: who called whom with what, and what came back.

use std::fmt;

use nano::{NanoError, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deep::deep;
use crate::json::Json;

/// The version of the call-tree format this build reads and writes: of the fragments servers
/// record and of the scenario files made from them.
pub const FORMAT_VERSION: u32 = 1;

/// How a call ended, as it would cross a wire: a response body, or an error's code and flattened
/// message.
///
/// In JSON: `{"response": {...}}`, `{"error": {"code": "C-NOT-FOUND", "message": "..."}}`, or
/// `"unfinished"` for a call whose caller stopped waiting (deadline, cancellation) before it
/// ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The call answered with this response body.
    Response(Json),
    /// The call failed.
    Error {
        /// The error code, empty for an uncoded error.
        code: String,
        /// The whole error chain as one message, as [`NanoError::flatten`] gives it.
        message: String,
    },
    /// The call had not ended when it was dropped.
    Unfinished,
}

impl CallOutcome {
    /// The outcome of a type-erased call.
    pub fn from_outcome(outcome: &Outcome) -> CallOutcome {
        match outcome {
            Ok(response) => match response.to_json_value() {
                Ok(body) => CallOutcome::Response(Json::from(body)),
                Err(err) => CallOutcome::from_error(&err),
            },
            Err(err) => CallOutcome::from_error(err),
        }
    }

    /// The outcome of a typed call.
    pub fn from_result<T: Serialize>(result: &Result<T, NanoError>) -> CallOutcome {
        match result {
            Ok(response) => match serde_json::to_value(response) {
                Ok(body) => CallOutcome::Response(Json::from(body)),
                Err(err) => CallOutcome::from_error(&NanoError::new(
                    nano::codes::ENCODE,
                    format!("cannot encode the response: {err}"),
                )),
            },
            Err(err) => CallOutcome::from_error(err),
        }
    }

    /// The outcome of a failed call: its code and its flattened message.
    pub fn from_error(err: &NanoError) -> CallOutcome {
        CallOutcome::Error {
            code: err.code().to_owned(),
            message: err.to_string(),
        }
    }

    /// The outcome as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| unreachable!("an outcome always encodes"))
    }

    /// Whether the call answered with a response.
    pub fn is_response(&self) -> bool {
        matches!(self, CallOutcome::Response(_))
    }
}

/// One call of a call tree and the calls it caused, in the order they started.
///
/// A tree may be as deep as the call chain it records: cloning, comparing, printing,
/// (de)serializing and dropping it never overflow the stack, and a body nested deeper than the
/// HTTP transport accepts (128 levels) is refused when a tree is deserialized.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallNode {
    /// Who called: a service name, or the test's caller name.
    pub caller: String,
    /// The called service.
    pub service: String,
    /// The request's wire name.
    pub request: String,
    /// The request id of the tree; empty where ids are left out (scenario files).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The request body as JSON.
    pub body: Json,
    /// How the call ended.
    pub outcome: CallOutcome,
    /// The calls this call caused.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_calls",
        deserialize_with = "deserialize_calls"
    )]
    pub calls: Vec<CallNode>,
}

fn serialize_calls<S: serde::Serializer>(
    calls: &[CallNode],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    deep(|| calls.serialize(serializer))
}

fn deserialize_calls<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<CallNode>, D::Error> {
    deep(|| Vec::<CallNode>::deserialize(deserializer))
}

impl Clone for CallNode {
    fn clone(&self) -> Self {
        deep(|| CallNode {
            caller: self.caller.clone(),
            service: self.service.clone(),
            request: self.request.clone(),
            request_id: self.request_id.clone(),
            body: self.body.clone(),
            outcome: self.outcome.clone(),
            calls: self.calls.clone(),
        })
    }
}

impl PartialEq for CallNode {
    fn eq(&self, other: &Self) -> bool {
        deep(|| {
            self.caller == other.caller
                && self.service == other.service
                && self.request == other.request
                && self.request_id == other.request_id
                && self.body == other.body
                && self.outcome == other.outcome
                && self.calls == other.calls
        })
    }
}

impl fmt::Debug for CallNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        deep(|| {
            f.debug_struct("CallNode")
                .field("caller", &self.caller)
                .field("service", &self.service)
                .field("request", &self.request)
                .field("request_id", &self.request_id)
                .field("body", &self.body)
                .field("outcome", &self.outcome)
                .field("calls", &self.calls)
                .finish()
        })
    }
}

impl Drop for CallNode {
    /// Drops the calls below this one from a heap stack: the derived drop would recurse once
    /// per level of the tree.
    fn drop(&mut self) {
        let mut below = std::mem::take(&mut self.calls);
        while let Some(mut node) = below.pop() {
            below.append(&mut node.calls);
        }
    }
}

impl CallNode {
    /// This node and all below it, depth first, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = &CallNode> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            stack.extend(node.calls.iter().rev());
            Some(node)
        })
    }
}

/// How far the outline indents; deeper calls are indented as much and prefixed with their depth,
/// so printing a deep tree takes time and space linear in its size.
const MAX_INDENT: usize = 32;

impl fmt::Display for CallNode {
    /// An indented outline: `test -> svc2 svc2.Req {"param":"x"} => response {...}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut stack = vec![(self, 0usize)];
        while let Some((node, depth)) = stack.pop() {
            let indent = depth.min(MAX_INDENT) * 2;
            write!(f, "{:indent$}", "")?;
            if depth > MAX_INDENT {
                write!(f, "[{depth}] ")?;
            }
            write!(
                f,
                "{} -> {} {} {} => ",
                node.caller, node.service, node.request, node.body
            )?;
            match &node.outcome {
                CallOutcome::Response(body) => writeln!(f, "response {body}")?,
                CallOutcome::Error { code, message } => writeln!(f, "error {code} {message:?}")?,
                CallOutcome::Unfinished => writeln!(f, "unfinished")?,
            }
            stack.extend(node.calls.iter().rev().map(|call| (call, depth + 1)));
        }
        Ok(())
    }
}
