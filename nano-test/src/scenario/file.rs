//! The scenario file: a versioned, pretty-printed JSON document of one recorded request tree.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::de::{IoRead, StrRead};

use crate::CallNode;
use crate::deep::Scalar;
use crate::spec::Spec;

/// The version of the scenario format this build reads and writes: the call-tree format's, as
/// the fragments servers record have.
pub use nano_record::FORMAT_VERSION;

/// A recorded request tree: the root request that entered the system, every call it caused with
/// its outcome, and the rules for comparing a replay with it.
///
/// On disk it is pretty-printed JSON with a stable key order, so a re-recording shows up as a
/// readable diff. `docs/scenario-format.md` describes the format for other languages and
/// `docs/scenario.schema.json` is its JSON Schema.
///
/// ```
/// use nano_test::scenario::Scenario;
///
/// let scenario = Scenario::from_json(r#"{
///   "version": 1,
///   "name": "svc4-echo",
///   "root": {
///     "caller": "test",
///     "service": "svc4",
///     "request": "svc4.Req",
///     "body": {"param": "x"},
///     "outcome": {"response": {"value": "svc4_x"}}
///   }
/// }"#, "inline.json")?;
/// assert_eq!(scenario.root.service, "svc4");
/// assert!(scenario.to_json().ends_with("}\n"));
/// # Ok::<(), nano_test::scenario::ScenarioError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// A short name, unique among the scenarios of a project; conventionally the file stem.
    pub name: String,
    /// What the scenario shows, for people reading it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Services that are unreachable while the scenario runs (a deployment where they cannot be
    /// made unreachable skips the scenario).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
    /// How a replay is compared with the recording: volatile and ignored fields, matchers.
    #[serde(default)]
    pub spec: Spec,
    /// The root request and, below it, every call it caused.
    pub root: CallNode,
}

impl Scenario {
    /// A scenario of a recorded tree, with request ids left out (they differ on every run).
    pub fn new(name: impl Into<String>, mut root: CallNode) -> Self {
        let mut below = vec![&mut root];
        while let Some(node) = below.pop() {
            node.request_id.clear();
            below.extend(node.calls.iter_mut());
        }
        Scenario {
            version: FORMAT_VERSION,
            name: name.into(),
            description: String::new(),
            unreachable: Vec::new(),
            spec: Spec::default(),
            root,
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the spec replays are compared under.
    #[must_use]
    pub fn with_spec(mut self, spec: Spec) -> Self {
        self.spec = spec;
        self
    }

    /// Reads and validates a scenario file.
    ///
    /// The file is read as a stream, twice (the version first, then the scenario), so memory
    /// holds the scenario being built and not the file's text as well; call trees of any depth
    /// load.
    ///
    /// # Errors
    ///
    /// A [`ScenarioError`] naming the file, the line and column, the JSON path and the problem:
    /// unreadable file, invalid or truncated JSON, unsupported version, a missing or unknown field.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let open = || {
            std::fs::File::open(path)
                .map(|file| IoRead::new(std::io::BufReader::with_capacity(64 * 1024, file)))
                .map_err(|err| ScenarioError {
                    file: path.to_owned(),
                    line: None,
                    path: None,
                    problem: format!("cannot read the file: {err}"),
                })
        };
        parse(open, path)
    }

    /// Parses a scenario; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Scenario::load).
    pub fn from_json(text: &str, origin: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        parse(|| Ok(StrRead::new(text)), origin.as_ref())
    }

    /// The scenario as pretty-printed JSON with a final newline, as it is stored.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .unwrap_or_else(|_| unreachable!("a scenario always encodes"));
        text.push('\n');
        text
    }

    /// Writes the scenario to `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ScenarioError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(|err| ScenarioError {
            file: path.to_owned(),
            line: None,
            path: None,
            problem: format!("cannot write the file: {err}"),
        })
    }
}

/// Parses a scenario from the JSON `open` reads (called twice: version first, then the rest).
fn parse<'de, R: serde_json::de::Read<'de>>(
    open: impl Fn() -> Result<R, ScenarioError>,
    file: &Path,
) -> Result<Scenario, ScenarioError> {
    let error =
        |line: Option<(usize, usize)>, path: Option<String>, problem: String| ScenarioError {
            file: file.to_owned(),
            line,
            path,
            problem,
        };
    // The version is checked first: a file of another version fails with that, not with
    // whatever field it has that this version does not know. Only the version is built; the rest
    // is skipped without recursion.
    let mut probe = serde_json::Deserializer::new(open()?);
    probe.disable_recursion_limit();
    let version = Version::deserialize(&mut probe)
        .and_then(|version| probe.end().map(|()| version))
        .map_err(|err| {
            let problem = if err.is_eof() {
                format!("the file ends too early (truncated?): {err}")
            } else {
                format!("not valid JSON: {err}")
            };
            error(Some((err.line(), err.column())), None, problem)
        })?;
    match version.0 {
        None => {
            return Err(error(
                None,
                Some("version".into()),
                "missing field `version`: not a scenario file?".into(),
            ));
        }
        Some(Scalar::Unsigned(n)) if n == u64::from(FORMAT_VERSION) => {}
        Some(other) => {
            return Err(error(
                None,
                Some("version".into()),
                format!(
                    "unsupported scenario version {other}: this build reads version \
                     {FORMAT_VERSION}"
                ),
            ));
        }
    }
    // serde_json's recursion limit would refuse call trees deeper than about 60 calls; the call
    // tree's own (de)serialization grows the stack instead, and bodies are bounded in depth.
    let mut deserializer = serde_json::Deserializer::new(open()?);
    deserializer.disable_recursion_limit();
    // The first pass checked the syntax of the whole document, trailing characters included.
    let scenario: Scenario =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let problem = inner.to_string();
            // serde_json appends " at line L column C"; the location is reported separately.
            let problem = match problem.rfind(" at line ") {
                Some(at) => problem[..at].to_owned(),
                None => problem,
            };
            error(Some((inner.line(), inner.column())), Some(path), problem)
        })?;
    if scenario.name.trim().is_empty() {
        return Err(error(None, Some("name".into()), "the name is empty".into()));
    }
    Ok(scenario)
}

/// The `version` field of a document, read without building anything else; `None` when there
/// is none (also when the document is not an object).
struct Version(Option<Scalar>);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Version, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Version;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scenario")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Version, A::Error> {
                let mut version = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "version" && version.is_none() {
                        version = Some(map.next_value::<Scalar>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Version(version))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Version, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Version(None))
            }

            fn visit_bool<E>(self, _: bool) -> Result<Version, E> {
                Ok(Version(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Version, E> {
                Ok(Version(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Version, E> {
                Ok(Version(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Version, E> {
                Ok(Version(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Version, E> {
                Ok(Version(None))
            }
            fn visit_unit<E>(self) -> Result<Version, E> {
                Ok(Version(None))
            }
        }
        deserializer.deserialize_any(Fields)
    }
}

/// A scenario file and what loading it gave.
pub type LoadedFile = (PathBuf, Result<Scenario, ScenarioError>);

/// Loads every `*.json` scenario in `dir`, sorted by file name. Each file's result is returned
/// separately, so one broken file does not hide the others.
///
/// # Errors
///
/// When the directory cannot be read.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<LoadedFile>, ScenarioError> {
    let dir = dir.as_ref();
    let entries = std::fs::read_dir(dir).map_err(|err| ScenarioError {
        file: dir.to_owned(),
        line: None,
        path: None,
        problem: format!("cannot read the scenario directory: {err}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| {
            let loaded = Scenario::load(&path);
            (path, loaded)
        })
        .collect())
}

/// Why a scenario file could not be loaded: the file, where in it, and what is wrong.
#[derive(Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// Line and column (from 1), when known.
    pub line: Option<(usize, usize)>,
    /// The JSON path of the offending value (e.g. `root.calls[0].outcome`), when known.
    pub path: Option<String>,
    /// The problem.
    pub problem: String,
}

/// The readable report, also when a test returns this error with `?` (the test harness prints
/// the `Debug` form of a returned error).
impl fmt::Debug for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.line {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty() && *p != ".") {
            write!(f, "at `{path}`: ")?;
        }
        f.write_str(&self.problem)
    }
}

impl std::error::Error for ScenarioError {}
