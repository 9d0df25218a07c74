//! Finding scenarios: the directory, the filter, the registry of request types.

use std::path::{Path, PathBuf};

use crate::scenario::{Registry, Scenario, ScenarioError, load_dir};
use anyhow::Context;
use nano_server::System;

/// The request types every scenario of `system` may use: those its services declare.
pub(crate) fn registry(system: &System) -> anyhow::Result<Registry> {
    Registry::from_apis(&system.apis()).map_err(|err| anyhow::anyhow!("{err}"))
}

/// The scenarios of `dir` whose name contains `filter`, and the files that did not load.
pub(crate) struct Catalog {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) broken: Vec<(PathBuf, ScenarioError)>,
}

impl Catalog {
    /// [`load`](Catalog::load), failing when `dir` holds no scenario `filter` selects: a run
    /// that checks nothing must not pass.
    pub(crate) fn load_some(
        system: &System,
        dir: &Path,
        filter: Option<&str>,
    ) -> anyhow::Result<Catalog> {
        let catalog = Catalog::load(system, dir, filter)?;
        if catalog.scenarios.is_empty() && catalog.broken.is_empty() {
            match filter {
                Some(filter) => {
                    anyhow::bail!("no scenario in {} matches {filter:?}", dir.display())
                }
                None => anyhow::bail!("no scenario files (*.json) in {}", dir.display()),
            }
        }
        Ok(catalog)
    }

    /// Loads `dir`; a broken file is kept as an error (it fails the run), never skipped.
    pub(crate) fn load(
        system: &System,
        dir: &Path,
        filter: Option<&str>,
    ) -> anyhow::Result<Catalog> {
        let files = load_dir(dir)
            .with_context(|| format!("cannot load scenarios from {}", dir.display()))?;
        let mut catalog = Catalog {
            scenarios: Vec::new(),
            broken: Vec::new(),
        };
        for (path, loaded) in files {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
            match loaded {
                Ok(scenario) if selected(&scenario.name) => {
                    if let Some(problem) = unknown_service(system, &scenario) {
                        catalog.broken.push((
                            path.clone(),
                            ScenarioError {
                                file: path,
                                line: None,
                                path: None,
                                problem,
                            },
                        ));
                    } else if scenario.name != stem {
                        catalog.broken.push((
                            path.clone(),
                            ScenarioError {
                                file: path,
                                line: None,
                                path: Some("name".into()),
                                problem: format!(
                                    "the name {:?} differs from the file name {stem:?}",
                                    scenario.name
                                ),
                            },
                        ));
                    } else {
                        catalog.scenarios.push(scenario);
                    }
                }
                Ok(_) => {}
                Err(err) if selected(&stem) => catalog.broken.push((path, err)),
                Err(_) => {}
            }
        }
        catalog.scenarios.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(catalog)
    }
}

/// A service `system` does not have, named by the scenario (a typo would otherwise make the
/// scenario fail in some deployments and be skipped in others).
fn unknown_service(system: &System, scenario: &Scenario) -> Option<String> {
    let names = system.service_names();
    let known = |name: &str| names.contains(&name);
    let unknown = scenario
        .root
        .iter()
        .map(|node| (node.service.as_str(), "a call to"))
        .chain(
            scenario
                .unreachable
                .iter()
                .map(|name| (name.as_str(), "`unreachable` names")),
        )
        .find(|(name, _)| !known(name))?;
    Some(format!(
        "{} unknown service {:?} (known: {})",
        unknown.1,
        unknown.0,
        names.join(", ")
    ))
}

/// A scenario file given as a path, or as the name of a scenario in `dir`.
pub(crate) fn resolve(dir: &Path, file_or_name: &Path) -> PathBuf {
    let is_bare_name = file_or_name.components().count() == 1 && file_or_name.extension().is_none();
    if !file_or_name.exists() && is_bare_name {
        file_of(dir, &file_or_name.to_string_lossy())
    } else {
        file_or_name.to_owned()
    }
}

/// The file of the scenario `name` in `dir`.
pub(crate) fn file_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}
