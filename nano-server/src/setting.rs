//! [`Setting`]: a configuration value of a system's own (a database path, an API URL, a
//! secret), given to its server executables as a flag or an environment variable.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A configuration value of a system's own that its service constructors read, such as a
/// database path or a secret.
///
/// Declared on the [`System`](crate::System) with [`System::setting`](crate::System::setting),
/// it becomes a flag (`--NAME VALUE`) of the server executables that run the services it is for,
/// with the environment variable as its fallback, listed in their `--help`. Constructors read it
/// with [`value`](Setting::value): the flag this process's server main was given, else the
/// environment variable, else `None` — so the same constructor works in a server, in a test and
/// in a client program.
///
/// ```
/// use nano_server::Setting;
///
/// static DATABASE: Setting = Setting::new(
///     "db",
///     "MY_SYSTEM_DB",
///     "PATH",
///     "The SQLite file of the accounts (unset: in memory)",
/// );
/// // Neither a flag nor the variable here.
/// assert_eq!(DATABASE.value(), None);
/// assert_eq!(DATABASE.flag(), "db");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    flag: &'static str,
    env: &'static str,
    value_name: &'static str,
    help: &'static str,
}

impl Setting {
    /// A setting given as `--flag VALUE` or in the environment variable `env`; `value_name`
    /// and `help` are what `--help` shows.
    pub const fn new(
        flag: &'static str,
        env: &'static str,
        value_name: &'static str,
        help: &'static str,
    ) -> Setting {
        Setting {
            flag,
            env,
            value_name,
            help,
        }
    }

    /// The flag's name, without the leading `--`.
    pub fn flag(&self) -> &'static str {
        self.flag
    }

    /// The environment variable.
    pub fn env(&self) -> &'static str {
        self.env
    }

    /// The placeholder of the value in `--help`.
    pub fn value_name(&self) -> &'static str {
        self.value_name
    }

    /// The description in `--help`.
    pub fn help(&self) -> &'static str {
        self.help
    }

    /// The value: the flag given to this process's server main, else the environment variable
    /// (when it is set and valid UTF-8), else `None`.
    pub fn value(&self) -> Option<String> {
        if let Some(given) = GIVEN.get().and_then(|given| given.get(self.flag)) {
            return Some(given.clone());
        }
        std::env::var(self.env).ok()
    }
}

/// The settings' values the server main parsed from its command line, once per process.
static GIVEN: OnceLock<BTreeMap<&'static str, String>> = OnceLock::new();

/// Records the values a server main parsed for its settings (flag name → value), for
/// [`Setting::value`]. Only the first call of a process counts: a process runs one server main.
///
/// Server mains call it after parsing and before building the services; nothing else needs to.
pub fn set_given_settings(values: BTreeMap<&'static str, String>) {
    let _ = GIVEN.set(values);
}
