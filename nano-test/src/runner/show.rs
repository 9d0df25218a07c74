//! `show FILE`: a scenario's call tree as text and as a Mermaid sequence diagram.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::CallNode;
use crate::CallOutcome;
use crate::scenario::Scenario;
use clap::Args;

/// Which scenario, and which views.
#[derive(Debug, Clone, Args)]
pub(crate) struct ShowArgs {
    /// The scenario file, or the name of a scenario in --dir.
    pub(crate) file: PathBuf,
    /// Directory of scenario files (for a scenario given by name).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Print only the Mermaid diagram (e.g. to paste into Markdown).
    #[arg(long)]
    pub(crate) mermaid: bool,
}

pub(crate) fn main(args: ShowArgs, config: &crate::runner::Config) -> anyhow::Result<ExitCode> {
    let dir = config.dir(args.dir.as_ref());
    let scenario = Scenario::load(crate::runner::catalog::resolve(&dir, &args.file))?;
    // One buffer for the whole output: a large tree is many lines, not many writes.
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    crate::runner::out::checked(
        write_views(&mut out, &scenario, args.mermaid).and_then(|()| out.flush()),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn write_views(out: &mut impl Write, scenario: &Scenario, only_mermaid: bool) -> io::Result<()> {
    // A secret written out in a scenario that does not keep secrets is shown as a placeholder,
    // as everywhere else the toolkit shows one.
    let mut scenario = scenario.clone();
    scenario.spec.secrets().redact_tree(&mut scenario.root);
    let scenario = &scenario;
    if only_mermaid {
        return out.write_all(mermaid(&scenario.root).as_bytes());
    }
    writeln!(out, "scenario {}", scenario.name)?;
    if !scenario.description.is_empty() {
        writeln!(out, "{}", scenario.description)?;
    }
    if !scenario.unreachable.is_empty() {
        writeln!(out, "unreachable: {}", scenario.unreachable.join(", "))?;
    }
    writeln!(out)?;
    write!(out, "{}", scenario.root)?;
    writeln!(out, "\n```mermaid\n{}```", mermaid(&scenario.root))
}

/// The tree as a Mermaid sequence diagram: a request arrow per call, a reply arrow per answer
/// (crossed for errors), participants in order of appearance. Linear in the size of the tree,
/// whatever its depth or number of services.
pub(crate) fn mermaid(root: &CallNode) -> String {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut participants: Vec<&str> = Vec::new();
    for node in root.iter() {
        for name in [node.caller.as_str(), node.service.as_str()] {
            if seen.insert(name) {
                participants.push(name);
            }
        }
    }
    let mut out = String::from("sequenceDiagram\n");
    for name in &participants {
        let _ = writeln!(out, "    participant {}", id(name));
    }
    // Depth first without recursion: a call's request arrow when it is entered, its reply arrow
    // once every call below it is written.
    let mut stack = vec![(root, false)];
    while let Some((node, replied)) = stack.pop() {
        if replied {
            let (arrow, label) = match &node.outcome {
                CallOutcome::Response(body) => ("-->>", body.to_string()),
                CallOutcome::Error { code, message } => ("--x", format!("{code} {message}")),
                CallOutcome::Unfinished => ("--x", "unfinished".to_owned()),
            };
            let _ = writeln!(
                out,
                "    {}{arrow}-{}: {}",
                id(&node.service),
                id(&node.caller),
                text(&label)
            );
            continue;
        }
        let _ = writeln!(
            out,
            "    {}->>+{}: {} {}",
            id(&node.caller),
            id(&node.service),
            text(&node.request),
            text(&node.body.to_string())
        );
        stack.push((node, true));
        stack.extend(node.calls.iter().rev().map(|call| (call, false)));
    }
    out
}

/// A participant id Mermaid accepts: letters, digits and underscores.
fn id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Message text with the characters Mermaid treats specially written as entities.
fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_get_crossed_arrows_and_special_characters_are_escaped() {
        let node: CallNode = serde_json::from_value(serde_json::json!({
            "caller": "test-client", "service": "front", "request": "front.Ask",
            "body": {"param": "a;b#"},
            "outcome": {"error": {"code": "C-X", "message": "m"}}
        }))
        .unwrap();
        assert_eq!(
            mermaid(&node),
            "sequenceDiagram\n    participant test_client\n    participant front\n    \
             test_client->>+front: front.Ask {\"param\":\"a#59;b#35;\"}\n    front--x-test_client: C-X m\n"
        );
    }

    #[test]
    fn secrets_a_scenario_does_not_keep_are_shown_as_placeholders() {
        let node: CallNode = serde_json::from_value(serde_json::json!({
            "caller": "test", "service": "vault", "request": "vault.Login",
            "body": {"email": "ada@example.com", "password": "pw-hunter2"},
            "outcome": {"response": {"token": "tok-1"}}
        }))
        .unwrap();
        let shown = |scenario: &Scenario| {
            let mut out = Vec::new();
            write_views(&mut out, scenario, false).unwrap();
            String::from_utf8(out).unwrap()
        };
        let mut scenario = Scenario::new("login", node);
        let redacted = shown(&scenario);
        assert!(
            !redacted.contains("pw-hunter2") && !redacted.contains("tok-1"),
            "{redacted}"
        );
        assert!(redacted.contains("ada@example.com"), "{redacted}");
        scenario.spec = scenario.spec.keep_secrets();
        let kept = shown(&scenario);
        assert!(
            kept.contains("pw-hunter2") && kept.contains("tok-1"),
            "{kept}"
        );
    }
}
