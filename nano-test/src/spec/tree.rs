//! Call trees and call outcomes under a spec: their redacted forms for snapshots and the
//! comparison of two outcomes of one call.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::compare::{pretty, text_diff};
use super::{Mismatch, MismatchKind, Mismatches, Spec, Target};
use crate::deep::deep;
use crate::{CallNode, CallOutcome};

impl From<&CallNode> for Target {
    /// The target of a recorded call: its service and request.
    fn from(node: &CallNode) -> Self {
        Target::new(node.service.clone(), node.request.clone())
    }
}

impl Spec {
    /// Compares two outcomes of a call to `target`: response bodies field by field, errors by
    /// their `{"code", "message"}` body, and a response against an error as a difference at `$`.
    ///
    /// # Errors
    ///
    /// Every difference, with a diff of both outcomes.
    pub fn compare_outcomes(
        &self,
        target: &Target,
        expected: &CallOutcome,
        actual: &CallOutcome,
    ) -> Result<(), Mismatches> {
        let with_diff = |mismatches: Mismatches| {
            let diff = text_diff(
                &pretty(&self.redact_outcome(target, expected)),
                &pretty(&self.redact_outcome(target, actual)),
            );
            Mismatches { diff, ..mismatches }
        };
        if std::mem::discriminant(expected) == std::mem::discriminant(actual) {
            return self
                .compare(target, &outcome_body(expected), &outcome_body(actual))
                .map_err(|m| with_diff(m.about(outcome_kind(expected))));
        }
        Err(with_diff(Mismatches {
            target: target.clone(),
            subject: "outcome".into(),
            mismatches: vec![Mismatch {
                path: "$".into(),
                kind: MismatchKind::Different,
                expected: Some(self.secrets().redact_outcome(expected).to_value()),
                actual: Some(self.secrets().redact_outcome(actual).to_value()),
            }],
            diff: String::new(),
        }))
    }

    /// An outcome of a call to `target` with its body redacted, as it goes into a snapshot.
    pub fn redact_outcome(&self, target: &Target, outcome: &CallOutcome) -> Value {
        match outcome {
            CallOutcome::Response(body) => {
                serde_json::json!({ "response": self.redact(target, &body.to_value()) })
            }
            CallOutcome::Error { .. } => {
                serde_json::json!({ "error": self.redact(target, &outcome_body(outcome)) })
            }
            CallOutcome::Unfinished => outcome.to_value(),
        }
    }

    /// A call tree as it goes into a snapshot, as JSON: request and response bodies redacted
    /// (each with its own call's target), request ids replaced by `[req-1]`, `[req-2]`… in order
    /// of appearance, so the snapshot still shows which calls shared an id.
    pub fn redact_tree(&self, tree: &CallNode) -> Value {
        serde_json::to_value(self.tree_snapshot(tree, &mut HashMap::new()))
            .unwrap_or_else(|_| unreachable!("a redacted tree always encodes"))
    }

    /// The redacted tree with its fields in declaration order, for snapshots; `ids` numbers the
    /// request ids seen so far.
    pub(crate) fn tree_snapshot(
        &self,
        tree: &CallNode,
        ids: &mut HashMap<String, usize>,
    ) -> TreeSnapshot {
        let next = ids.len() + 1;
        let ordinal = *ids.entry(tree.request_id.clone()).or_insert(next);
        let target = Target::from(tree);
        deep(|| TreeSnapshot {
            caller: tree.caller.clone(),
            service: tree.service.clone(),
            request: tree.request.clone(),
            request_id: format!("[req-{ordinal}]"),
            body: self.redact(&target, &tree.body.to_value()),
            outcome: self.redact_outcome(&target, &tree.outcome),
            calls: tree
                .calls
                .iter()
                .map(|call| self.tree_snapshot(call, ids))
                .collect(),
        })
    }
}

/// What a comparison of two outcomes of the same kind is about.
fn outcome_kind(outcome: &CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Response(_) => "response",
        CallOutcome::Error { .. } => "error",
        CallOutcome::Unfinished => "outcome",
    }
}

/// The body rules apply to: the response, or `{"code", "message"}` of an error.
fn outcome_body(outcome: &CallOutcome) -> Value {
    match outcome {
        CallOutcome::Response(body) => body.to_value(),
        CallOutcome::Error { code, message } => {
            serde_json::json!({ "code": code, "message": message })
        }
        CallOutcome::Unfinished => Value::Null,
    }
}

/// A redacted [`CallNode`], serialised in a reading order (a JSON value would sort the keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TreeSnapshot {
    caller: String,
    service: String,
    request: String,
    request_id: String,
    body: Value,
    outcome: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    calls: Vec<TreeSnapshot>,
}
