//! The result table of a run: printed for people, written as JSON and JUnit XML for CI systems.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::scenario::ReplayFailure;

use crate::runner::deployments::{Target, Verdict};

/// Every verdict of a run, by scenario and deployment.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) targets: Vec<Target>,
    /// One row per scenario (or broken file), in name order.
    pub(crate) rows: Vec<Row>,
    /// Where the wall time went, in order.
    pub(crate) timings: Vec<(String, Duration)>,
}

#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) cells: Vec<Verdict>,
}

impl Results {
    /// Whether the run fails: a scenario failed anywhere, or no cell was decided at all (each
    /// one not applicable), since a run that checked nothing is no pass. A cell that does not
    /// apply is no failure by itself.
    pub(crate) fn failed(&self) -> bool {
        self.rows
            .iter()
            .flat_map(|row| &row.cells)
            .any(|cell| matches!(cell, Verdict::Fail(_)))
            || self.nothing_decided()
    }

    /// Whether no cell was decided: every one is not applicable.
    pub(crate) fn nothing_decided(&self) -> bool {
        self.rows
            .iter()
            .flat_map(|row| &row.cells)
            .all(|cell| matches!(cell, Verdict::NotApplicable(_)))
    }

    /// The table, with numbered notes for every failure (its first difference) and cell that does not
    /// apply (its reason), then the full report of every failure.
    pub(crate) fn render(&self) -> String {
        let mut notes: Vec<String> = Vec::new();
        let cell_text = |cell: &Verdict, notes: &mut Vec<String>| -> String {
            match cell {
                Verdict::Pass => "pass".into(),
                Verdict::Fail(failure) => {
                    let note = format!("FAIL {}", failure.first_difference());
                    match notes.iter().position(|n| n == &note) {
                        Some(i) => format!("FAIL [{}]", i + 1),
                        None => {
                            notes.push(note);
                            format!("FAIL [{}]", notes.len())
                        }
                    }
                }
                Verdict::NotApplicable(reason) => {
                    let note = format!("n/a {reason}");
                    if let Some(i) = notes.iter().position(|n| n == &note) {
                        format!("n/a [{}]", i + 1)
                    } else {
                        notes.push(note);
                        format!("n/a [{}]", notes.len())
                    }
                }
            }
        };
        let mut table: Vec<Vec<String>> = vec![
            std::iter::once("scenario".to_owned())
                .chain(self.targets.iter().map(|t| t.name().to_owned()))
                .collect(),
        ];
        for row in &self.rows {
            let mut line = vec![row.scenario.clone()];
            line.extend(row.cells.iter().map(|cell| cell_text(cell, &mut notes)));
            table.push(line);
        }
        let widths: Vec<usize> = (0..table[0].len())
            .map(|col| table.iter().map(|line| line[col].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for line in &table {
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        if !notes.is_empty() {
            out.push('\n');
            for (i, note) in notes.iter().enumerate() {
                let _ = writeln!(out, "[{}] {note}", i + 1);
            }
        }
        // Each distinct failure in full once, naming every deployment it happened in (a file
        // that does not load, or a behaviour change, fails every column alike).
        let mut groups: Vec<(String, ReplayFailure)> = Vec::new();
        for (row, cell) in self
            .rows
            .iter()
            .flat_map(|row| row.cells.iter().map(move |cell| (row, cell)))
        {
            if let Verdict::Fail(failure) = cell {
                let details: Vec<&str> =
                    failure.problems.iter().map(|p| p.detail.as_str()).collect();
                let key = format!("{}\n{}", row.scenario, details.join("\n"));
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, group)) => {
                        group.mode = format!("{}, {}", group.mode, failure.mode);
                    }
                    None => groups.push((key, failure.clone())),
                }
            }
        }
        for (_, failure) in &groups {
            let _ = write!(out, "\n{failure}");
        }
        out
    }

    /// The timing breakdown line.
    pub(crate) fn render_timings(&self) -> String {
        let total: Duration = self.timings.iter().map(|(_, d)| *d).sum();
        let parts: Vec<String> = self
            .timings
            .iter()
            .map(|(what, d)| format!("{what} {:.2}s", d.as_secs_f64()))
            .collect();
        format!(
            "wall time {:.2}s (build excluded): {}",
            total.as_secs_f64(),
            parts.join(", ")
        )
    }

    /// Writes the results as JSON.
    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Cell<'a> {
            deployment: &'a str,
            status: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<String>,
        }
        #[derive(Serialize)]
        struct Scenario<'a> {
            name: &'a str,
            results: Vec<Cell<'a>>,
        }
        #[derive(Serialize)]
        struct Document<'a> {
            passed: bool,
            deployments: Vec<&'a str>,
            scenarios: Vec<Scenario<'a>>,
            timings_ms: Vec<(&'a str, u128)>,
        }
        let document = Document {
            passed: !self.failed(),
            deployments: self.targets.iter().map(|t| t.name()).collect(),
            scenarios: self
                .rows
                .iter()
                .map(|row| Scenario {
                    name: &row.scenario,
                    results: row
                        .cells
                        .iter()
                        .zip(&self.targets)
                        .map(|(cell, target)| {
                            let (status, detail) = status_of(cell);
                            Cell {
                                deployment: target.name(),
                                status,
                                detail,
                            }
                        })
                        .collect(),
                })
                .collect(),
            timings_ms: self
                .timings
                .iter()
                .map(|(what, d)| (what.as_str(), d.as_millis()))
                .collect(),
        };
        let text = serde_json::to_string_pretty(&document)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Writes the results as JUnit XML: a test suite per deployment, a test case per scenario.
    pub(crate) fn write_junit(&self, path: &Path) -> anyhow::Result<()> {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"scenarios\">\n",
        );
        for (col, target) in self.targets.iter().enumerate() {
            let cells: Vec<(&str, &Verdict)> = self
                .rows
                .iter()
                .map(|row| (row.scenario.as_str(), &row.cells[col]))
                .collect();
            let failures = cells
                .iter()
                .filter(|(_, c)| matches!(c, Verdict::Fail(_)))
                .count();
            let skipped = cells
                .iter()
                .filter(|(_, c)| matches!(c, Verdict::NotApplicable(_)))
                .count();
            let _ = writeln!(
                xml,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
                escape(target.name()),
                cells.len()
            );
            for (scenario, cell) in cells {
                let _ = write!(
                    xml,
                    "    <testcase classname=\"scenarios.{}\" name=\"{}\"",
                    escape(target.name()),
                    escape(scenario)
                );
                match cell {
                    Verdict::Pass => xml.push_str("/>\n"),
                    Verdict::Fail(failure) => {
                        let _ = write!(
                            xml,
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                            escape(&failure.first_difference()),
                            escape(&failure.to_string())
                        );
                    }
                    Verdict::NotApplicable(reason) => {
                        let _ = write!(
                            xml,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                            escape(reason)
                        );
                    }
                }
            }
            xml.push_str("  </testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        std::fs::write(path, xml).with_context(|| format!("cannot write {}", path.display()))
    }
}

fn status_of(cell: &Verdict) -> (&'static str, Option<String>) {
    match cell {
        Verdict::Pass => ("pass", None),
        Verdict::Fail(failure) => ("fail", Some(failure.to_string())),
        Verdict::NotApplicable(reason) => ("n/a", Some(reason.clone())),
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_fails_on_a_failure_and_when_no_cell_was_decided() {
        let results = |cells: Vec<Verdict>| Results {
            rows: vec![Row {
                scenario: "s".into(),
                cells,
            }],
            ..Results::default()
        };
        let na = || Verdict::NotApplicable("no way".into());
        assert!(!results(vec![Verdict::Pass, na()]).failed());
        let nothing = results(vec![na(), na()]);
        assert!(nothing.failed() && nothing.nothing_decided());
        assert!(!results(vec![Verdict::Pass]).nothing_decided());
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
    }
}
