//! [`FaultPlan`]: what the simulated network does to calls, as code or as JSON.

use super::error::SimError;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a message takes to travel one way along an edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Instant delivery.
    #[default]
    None,
    /// Always the same delay.
    Fixed {
        /// The delay.
        #[serde(with = "millis")]
        ms: Duration,
    },
    /// A delay drawn uniformly from the whole milliseconds in `[min, max]`.
    Uniform {
        /// The shortest delay.
        #[serde(with = "millis")]
        min_ms: Duration,
        /// The longest delay.
        #[serde(with = "millis")]
        max_ms: Duration,
    },
}

impl Latency {
    /// A fixed one-way delay.
    pub fn fixed(delay: Duration) -> Self {
        Latency::Fixed { ms: delay }
    }

    /// A one-way delay drawn uniformly from `[min, max]`.
    pub fn uniform(min: Duration, max: Duration) -> Self {
        let (min_ms, max_ms) = if min <= max { (min, max) } else { (max, min) };
        Latency::Uniform { min_ms, max_ms }
    }

    pub(crate) fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed { ms } => ms,
            // Whole milliseconds: tokio's timer has millisecond resolution, so finer samples
            // would show up in traces as delays that did not happen.
            Latency::Uniform { min_ms, max_ms } => {
                let (a, b) = (min_ms.as_millis() as u64, max_ms.as_millis() as u64);
                Duration::from_millis(rng.u64(a.min(b)..=a.max(b)))
            }
        }
    }
}

/// What can happen to the calls of one edge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeFaults {
    /// One-way delay, applied to the request and again to the response.
    pub latency: Latency,
    /// Probability in `[0, 1]` that a request is lost: the callee never sees it and the caller
    /// gets `S-UNAVAILABLE`, as from a real transport.
    pub drop_rate: f64,
    /// Probability in `[0, 1]` that a response is lost: the callee handled the request (its
    /// effects happened) but the caller gets `S-UNAVAILABLE`, as from a connection that broke
    /// before the answer arrived.
    #[serde(skip_serializing_if = "is_zero")]
    pub lose_response_rate: f64,
    /// Probability in `[0, 1]` that a request is delivered twice, as by a transport or client
    /// that sends it again: the callee handles both copies, one after the other, and the caller
    /// gets the second copy's answer.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate_rate: f64,
    /// Probability in `[0, 1]` that the callee crashes as the request reaches it: this call and
    /// every call in flight at the callee fail with `S-UNAVAILABLE`, and the callee restarts at
    /// once, rebuilt from its constructor (the set must run it through
    /// [`Network::restartable`](super::Network::restartable)).
    #[serde(skip_serializing_if = "is_zero")]
    pub crash_rate: f64,
    /// The caller's transport timeout on this edge: a call that takes longer ends with
    /// `S-TIMEOUT`.
    #[serde(
        with = "opt_millis",
        rename = "timeout_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl EdgeFaults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the one-way latency.
    #[must_use]
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the probability that a request is lost.
    #[must_use]
    pub fn drop_rate(mut self, rate: f64) -> Self {
        self.drop_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the probability that a response is lost after the callee handled the request.
    #[must_use]
    pub fn lose_response_rate(mut self, rate: f64) -> Self {
        self.lose_response_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the probability that a request is delivered twice.
    #[must_use]
    pub fn duplicate_rate(mut self, rate: f64) -> Self {
        self.duplicate_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the probability that the callee crashes (and restarts) as a request reaches it.
    #[must_use]
    pub fn crash_rate(mut self, rate: f64) -> Self {
        self.crash_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the transport timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn injects_faults(&self) -> bool {
        self.latency != Latency::None
            || self.drop_rate > 0.0
            || self.lose_response_rate > 0.0
            || self.duplicate_rate > 0.0
            || self.crash_rate > 0.0
    }

    /// The rates by their JSON names, for validation.
    fn rates(&self) -> [(&'static str, f64); 4] {
        [
            ("drop_rate", self.drop_rate),
            ("lose_response_rate", self.lose_response_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("crash_rate", self.crash_rate),
        ]
    }
}

/// Leaves rates that are off out of a saved plan, so plans stay as short as they were written.
fn is_zero(rate: &f64) -> bool {
    *rate == 0.0
}

/// Whether an optional service name in a rule matches `name`: `None` matches any service.
fn name_matches(pattern: Option<&str>, name: &str) -> bool {
    pattern.is_none_or(|p| p == name)
}

/// The faults of every edge from `caller` to `callee`; a missing name matches any service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeRule {
    /// The calling service (or test), or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The called service, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    /// What happens on these edges.
    pub faults: EdgeFaults,
}

impl EdgeRule {
    /// Whether the rule applies to the edge `caller → callee`.
    pub fn matches(&self, caller: &str, callee: &str) -> bool {
        name_matches(self.caller.as_deref(), caller) && name_matches(self.callee.as_deref(), callee)
    }
}

/// A fault injected into one call.
///
/// In JSON an object with a `kind` and the fields of that kind only: `{"kind": "crash",
/// "down_ms": 50}`; any other key is an error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "FaultJson")]
pub enum Fault {
    /// The request is lost; the caller gets `S-UNAVAILABLE`.
    Drop,
    /// The callee handles the request, so its effects happen, but the response is lost: the
    /// caller gets `S-UNAVAILABLE`, as from a connection that broke before the answer arrived.
    LoseResponse,
    /// The request is delivered twice, as by a transport or client that sends it again: the
    /// callee handles both copies, one after the other, and the caller gets the second copy's
    /// answer.
    Duplicate,
    /// The callee crashes as the request reaches it: this call and every call in flight at the
    /// callee fail with `S-UNAVAILABLE`, its in-memory state is lost, and after `down_ms`
    /// (default 0) it is back, rebuilt from its constructor; calls in the meantime fail with
    /// `S-UNAVAILABLE`. The set must run the callee through
    /// [`Network::restartable`](super::Network::restartable).
    Crash {
        /// How long the callee stays down before it is back.
        #[serde(default, with = "millis")]
        down_ms: Duration,
    },
    /// The request is held back for this long before it is delivered.
    Delay {
        /// The extra delay.
        #[serde(with = "millis")]
        ms: Duration,
    },
    /// The callee is not reached and the caller gets this error instead.
    Error {
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// The callee never answers; the call ends only by a timeout or the caller's deadline.
    Hang,
}

/// A [`Fault`] as JSON holds it: every field any kind has, so that keys are checked against the
/// kind (serde alone ignores extra keys next to a kind without fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultJson {
    kind: FaultKind,
    #[serde(default, with = "opt_millis")]
    ms: Option<Duration>,
    code: Option<String>,
    message: Option<String>,
    #[serde(default, with = "opt_millis")]
    down_ms: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FaultKind {
    Drop,
    Delay,
    Error,
    Hang,
    LoseResponse,
    Duplicate,
    Crash,
}

impl TryFrom<FaultJson> for Fault {
    type Error = String;

    fn try_from(json: FaultJson) -> Result<Self, String> {
        let FaultJson {
            kind,
            ms,
            code,
            message,
            down_ms,
        } = json;
        // With its article, for the messages.
        let name = match kind {
            FaultKind::Drop => "a drop",
            FaultKind::Delay => "a delay",
            FaultKind::Error => "an error",
            FaultKind::Hang => "a hang",
            FaultKind::LoseResponse => "a lose_response",
            FaultKind::Duplicate => "a duplicate",
            FaultKind::Crash => "a crash",
        };
        let allowed: &[&str] = match kind {
            FaultKind::Delay => &["ms"],
            FaultKind::Error => &["code", "message"],
            FaultKind::Crash => &["down_ms"],
            _ => &[],
        };
        let present = [
            ("ms", ms.is_some()),
            ("code", code.is_some()),
            ("message", message.is_some()),
            ("down_ms", down_ms.is_some()),
        ];
        if let Some((field, _)) = present
            .iter()
            .find(|(field, there)| *there && !allowed.contains(field))
        {
            return Err(format!("{name} fault has no field `{field}`"));
        }
        let missing = |field: &str| format!("{name} fault needs the field `{field}`");
        Ok(match kind {
            FaultKind::Drop => Fault::Drop,
            FaultKind::Delay => Fault::Delay {
                ms: ms.ok_or_else(|| missing("ms"))?,
            },
            FaultKind::Error => Fault::Error {
                code: code.ok_or_else(|| missing("code"))?,
                message: message.ok_or_else(|| missing("message"))?,
            },
            FaultKind::Hang => Fault::Hang,
            FaultKind::LoseResponse => Fault::LoseResponse,
            FaultKind::Duplicate => Fault::Duplicate,
            FaultKind::Crash => Fault::Crash {
                down_ms: down_ms.unwrap_or_default(),
            },
        })
    }
}

/// A fault for the `nth` call (1-based) matching an edge, e.g. "the 3rd call to svc3 fails".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    /// The calling service, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The called service, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    /// Which call, counted from 1 across every edge the names match.
    pub nth: u64,
    /// What happens to it.
    pub fault: Fault,
}

impl ScriptedFault {
    /// Whether calls along `caller → callee` count towards this fault.
    pub fn matches(&self, caller: &str, callee: &str) -> bool {
        name_matches(self.caller.as_deref(), caller) && name_matches(self.callee.as_deref(), callee)
    }
}

/// A seeded description of an unreliable network: latency, lost requests and responses,
/// duplicate deliveries, crashes and timeouts per edge, and scripted faults. Build it in code or
/// load it from JSON (every key is documented in the repository's `docs/fault-plan-format.md`;
/// an unknown key is an error).
///
/// ```
/// use std::time::Duration;
/// use nano_test::sim::{EdgeFaults, Fault, FaultPlan, Latency};
///
/// let plan = FaultPlan::new(42)
///     .all_edges(EdgeFaults::new().latency(Latency::fixed(Duration::from_millis(200))))
///     .edge("svc2", "svc1", EdgeFaults::new().drop_rate(0.2).lose_response_rate(0.05))
///     .calls_to("billing", EdgeFaults::new().duplicate_rate(0.1))
///     .nth_call_to("svc3", 3, Fault::Drop)
///     .nth_call_to("users", 2, Fault::Crash { down_ms: Duration::from_millis(50) });
/// let json = serde_json::to_string(&plan)?;
/// assert_eq!(FaultPlan::from_json(&json)?, plan);
///
/// let same = FaultPlan::from_json(r#"{
///     "seed": 42,
///     "default": {"latency": {"kind": "fixed", "ms": 200}},
///     "edges": [
///         {"caller": "svc2", "callee": "svc1", "faults": {"drop_rate": 0.2, "lose_response_rate": 0.05}},
///         {"callee": "billing", "faults": {"duplicate_rate": 0.1}}
///     ],
///     "scripted": [
///         {"callee": "svc3", "nth": 3, "fault": {"kind": "drop"}},
///         {"callee": "users", "nth": 2, "fault": {"kind": "crash", "down_ms": 50}}
///     ]
/// }"#)?;
/// assert_eq!(same, plan);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// The seed of every random decision. `NANO_SIM_SEED` overrides it when a simulation starts.
    pub seed: u64,
    /// Faults of edges no rule in `edges` matches.
    pub default: EdgeFaults,
    /// Per-edge faults; the first matching rule wins.
    pub edges: Vec<EdgeRule>,
    /// Faults for particular calls.
    pub scripted: Vec<ScriptedFault>,
}

impl FaultPlan {
    /// A plan without faults.
    pub fn new(seed: u64) -> Self {
        FaultPlan {
            seed,
            ..Self::default()
        }
    }

    /// Parses a plan from JSON.
    ///
    /// # Errors
    ///
    /// A message naming the line, column and problem when the JSON is not a plan.
    pub fn from_json(json: &str) -> Result<Self, SimError> {
        let plan: FaultPlan = serde_json::from_str(json)
            .map_err(|err| SimError::new(format!("invalid fault plan: {err}")))?;
        plan.validate()
            .map_err(|err| SimError::new(format!("invalid fault plan: {err}")))?;
        Ok(plan)
    }

    /// Checks what serde cannot: rates are probabilities and ranges are ordered.
    ///
    /// # Errors
    ///
    /// The first problem, naming where it is.
    pub fn validate(&self) -> Result<(), SimError> {
        self.check().map_err(SimError::new)
    }

    fn check(&self) -> Result<(), String> {
        let check = |faults: &EdgeFaults, place: &str| {
            for (name, rate) in faults.rates() {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(format!(
                        "{place}: {name} must be between 0 and 1, not {rate}"
                    ));
                }
            }
            if let Latency::Uniform { min_ms, max_ms } = faults.latency
                && min_ms > max_ms
            {
                return Err(format!(
                    "{place}: latency min_ms ({}) is larger than max_ms ({})",
                    min_ms.as_millis(),
                    max_ms.as_millis()
                ));
            }
            Ok(())
        };
        check(&self.default, "default")?;
        for (i, rule) in self.edges.iter().enumerate() {
            check(&rule.faults, &format!("edges[{i}]"))?;
        }
        for (i, scripted) in self.scripted.iter().enumerate() {
            if scripted.nth == 0 {
                return Err(format!("scripted[{i}]: nth counts from 1"));
            }
        }
        Ok(())
    }

    /// Sets the faults of every edge without a more specific rule.
    #[must_use]
    pub fn all_edges(mut self, faults: EdgeFaults) -> Self {
        self.default = faults;
        self
    }

    /// Sets the faults of the edge `caller → callee`.
    #[must_use]
    pub fn edge(mut self, caller: &str, callee: &str, faults: EdgeFaults) -> Self {
        self.edges.push(EdgeRule {
            caller: Some(caller.to_owned()),
            callee: Some(callee.to_owned()),
            faults,
        });
        self
    }

    /// Sets the faults of every call to `callee`.
    #[must_use]
    pub fn calls_to(mut self, callee: &str, faults: EdgeFaults) -> Self {
        self.edges.push(EdgeRule {
            caller: None,
            callee: Some(callee.to_owned()),
            faults,
        });
        self
    }

    /// Injects `fault` into the `nth` call (1-based) to `callee`, from any caller.
    #[must_use]
    pub fn nth_call_to(mut self, callee: &str, nth: u64, fault: Fault) -> Self {
        self.scripted.push(ScriptedFault {
            caller: None,
            callee: Some(callee.to_owned()),
            nth,
            fault,
        });
        self
    }

    /// The faults of the edge `caller → callee`.
    pub fn faults_of(&self, caller: &str, callee: &str) -> &EdgeFaults {
        self.edges
            .iter()
            .find(|rule| rule.matches(caller, callee))
            .map_or(&self.default, |rule| &rule.faults)
    }

    /// Whether the plan is meant to inject any fault at all (partitions are made at run time and
    /// counted separately).
    pub fn injects_faults(&self) -> bool {
        self.default.injects_faults()
            || self.edges.iter().any(|rule| rule.faults.injects_faults())
            || !self.scripted.is_empty()
    }

    /// Whether the plan can crash a service (a scripted crash, or a crash rate on some edge), so
    /// that the services of a set must be [restartable](super::Network::restartable).
    pub fn may_crash(&self) -> bool {
        self.default.crash_rate > 0.0
            || self.edges.iter().any(|rule| rule.faults.crash_rate > 0.0)
            || self
                .scripted
                .iter()
                .any(|scripted| matches!(scripted.fault, Fault::Crash { .. }))
    }
}

/// Durations as whole or fractional milliseconds in JSON.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let micros = value.as_micros();
        if micros.is_multiple_of(1000) {
            s.serialize_u64((micros / 1000) as u64)
        } else {
            s.serialize_f64(micros as f64 / 1000.0)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !ms.is_finite() || ms < 0.0 {
            return Err(serde::de::Error::custom(format!(
                "a duration must be a non-negative number of milliseconds, not {ms}"
            )));
        }
        Ok(Duration::from_micros((ms * 1000.0).round() as u64))
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => super::millis::serialize(duration, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapper(#[serde(with = "super::millis")] Duration);
        Option::<Wrapper>::deserialize(d).map(|w| w.map(|Wrapper(d)| d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_wins_and_the_default_covers_the_rest() {
        let plan = FaultPlan::new(1)
            .all_edges(EdgeFaults::new().drop_rate(0.5))
            .edge("a", "b", EdgeFaults::new().drop_rate(0.1))
            .calls_to("b", EdgeFaults::new().drop_rate(0.2));
        assert_eq!(plan.faults_of("a", "b").drop_rate, 0.1);
        assert_eq!(plan.faults_of("c", "b").drop_rate, 0.2);
        assert_eq!(plan.faults_of("a", "c").drop_rate, 0.5);
    }

    #[test]
    fn plans_load_from_json_and_bad_plans_say_where() {
        let plan = FaultPlan::from_json(
            r#"{"seed": 7, "default": {"latency": {"kind": "uniform", "min_ms": 1, "max_ms": 2.5}},
                "edges": [{"callee": "svc1", "faults": {"drop_rate": 0.2, "timeout_ms": 100}}],
                "scripted": [{"callee": "svc3", "nth": 2, "fault": {"kind": "hang"}}]}"#,
        )
        .unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(
            plan.default.latency,
            Latency::uniform(Duration::from_millis(1), Duration::from_micros(2500))
        );
        assert_eq!(
            plan.faults_of("x", "svc1").timeout,
            Some(Duration::from_millis(100))
        );
        assert_eq!(plan.scripted[0].fault, Fault::Hang);
        let again = FaultPlan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(again, plan);

        let err =
            FaultPlan::from_json(r#"{"seed": 1, "edges": [{"faults": {"drop": 1}}]}"#).unwrap_err();
        assert!(err.message().contains("unknown field `drop`"), "{err}");
        assert!(err.message().contains("line 1"), "{err}");
        let err = FaultPlan::from_json(r#"{"default": {"timeout_ms": -1}}"#).unwrap_err();
        assert!(err.message().contains("non-negative"), "{err}");
        let err = FaultPlan::from_json(
            r#"{"edges": [{"faults": {"latency": {"kind": "uniform", "min_ms": 30, "max_ms": 1}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "invalid fault plan: edges[0]: latency min_ms (30) is larger than max_ms (1)"
        );
        let err = FaultPlan::from_json(r#"{"default": {"drop_rate": 1.5}}"#).unwrap_err();
        assert_eq!(
            err.message(),
            "invalid fault plan: default: drop_rate must be between 0 and 1, not 1.5"
        );
        let err = FaultPlan::from_json(r#"{"scripted": [{"nth": 0, "fault": {"kind": "drop"}}]}"#)
            .unwrap_err();
        assert_eq!(
            err.message(),
            "invalid fault plan: scripted[0]: nth counts from 1"
        );
    }

    #[test]
    fn the_faults_that_break_real_systems_load_from_json_and_are_validated() {
        let plan = FaultPlan::from_json(
            r#"{"default": {"lose_response_rate": 0.1, "duplicate_rate": 0.2, "crash_rate": 0.01},
                "scripted": [
                    {"callee": "a", "nth": 1, "fault": {"kind": "lose_response"}},
                    {"callee": "b", "nth": 2, "fault": {"kind": "duplicate"}},
                    {"callee": "c", "nth": 3, "fault": {"kind": "crash"}},
                    {"callee": "c", "nth": 4, "fault": {"kind": "crash", "down_ms": 250}}
                ]}"#,
        )
        .unwrap();
        assert_eq!(
            plan.default,
            EdgeFaults::new()
                .lose_response_rate(0.1)
                .duplicate_rate(0.2)
                .crash_rate(0.01)
        );
        let faults: Vec<_> = plan.scripted.iter().map(|s| s.fault.clone()).collect();
        assert_eq!(
            faults,
            [
                Fault::LoseResponse,
                Fault::Duplicate,
                Fault::Crash {
                    down_ms: Duration::ZERO
                },
                Fault::Crash {
                    down_ms: Duration::from_millis(250)
                },
            ]
        );
        assert!(plan.injects_faults() && plan.may_crash());
        let again = FaultPlan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(again, plan);
        // Rates that are off stay out of a saved plan.
        let saved = serde_json::to_string(&FaultPlan::new(1).all_edges(EdgeFaults::new())).unwrap();
        assert!(!saved.contains("duplicate_rate"), "{saved}");

        for (json, expected) in [
            (
                r#"{"edges": [{"faults": {"duplicate_rate": 2}}]}"#,
                "invalid fault plan: edges[0]: duplicate_rate must be between 0 and 1, not 2",
            ),
            (
                r#"{"default": {"lose_response_rate": -0.5}}"#,
                "invalid fault plan: default: lose_response_rate must be between 0 and 1, not -0.5",
            ),
            (
                r#"{"default": {"crash_rate": 1.01}}"#,
                "invalid fault plan: default: crash_rate must be between 0 and 1, not 1.01",
            ),
        ] {
            assert_eq!(FaultPlan::from_json(json).unwrap_err().message(), expected);
        }
        // Keys are strict in faults too, also for kinds without fields.
        for json in [
            r#"{"scripted": [{"nth": 1, "fault": {"kind": "crash", "down": 5}}]}"#,
            r#"{"scripted": [{"nth": 1, "fault": {"kind": "duplicate", "times": 3}}]}"#,
            r#"{"default": {"latency": {"kind": "fixed", "ms": 1, "jitter_ms": 2}}}"#,
        ] {
            let err = FaultPlan::from_json(json).unwrap_err();
            assert!(err.message().contains("unknown field"), "{json}: {err}");
        }
        for (json, expected) in [
            (
                r#"{"scripted": [{"nth": 1, "fault": {"kind": "duplicate", "ms": 3}}]}"#,
                "a duplicate fault has no field `ms`",
            ),
            (
                r#"{"scripted": [{"nth": 1, "fault": {"kind": "lose_response", "down_ms": 3}}]}"#,
                "a lose_response fault has no field `down_ms`",
            ),
            (
                r#"{"scripted": [{"nth": 1, "fault": {"kind": "crash", "ms": 3}}]}"#,
                "a crash fault has no field `ms`",
            ),
            (
                r#"{"scripted": [{"nth": 1, "fault": {"kind": "delay"}}]}"#,
                "a delay fault needs the field `ms`",
            ),
            (
                r#"{"scripted": [{"nth": 1, "fault": {"kind": "error", "code": "S-X"}}]}"#,
                "an error fault needs the field `message`",
            ),
        ] {
            let err = FaultPlan::from_json(json).unwrap_err();
            assert!(err.message().contains(expected), "{json}: {err}");
            assert!(err.message().contains("line 1"), "{json}: {err}");
        }
        let err =
            FaultPlan::from_json(r#"{"scripted": [{"nth": 1, "fault": {"kind": "explode"}}]}"#)
                .unwrap_err();
        assert!(err.message().contains("unknown variant `explode`"), "{err}");
        assert!(err.message().contains("lose_response"), "{err}");
        let err = FaultPlan::from_json(
            r#"{"scripted": [{"nth": 1, "fault": {"kind": "crash", "down_ms": -1}}]}"#,
        )
        .unwrap_err();
        assert!(err.message().contains("non-negative"), "{err}");
    }

    #[test]
    fn a_plan_without_crashes_needs_no_restartable_services() {
        let plan = FaultPlan::new(1)
            .all_edges(EdgeFaults::new().drop_rate(0.5).duplicate_rate(0.5))
            .nth_call_to("a", 1, Fault::LoseResponse);
        assert!(!plan.may_crash());
        assert!(
            plan.calls_to("a", EdgeFaults::new().crash_rate(0.1))
                .may_crash()
        );
    }

    #[test]
    fn uniform_latency_stays_in_range() {
        let latency = Latency::uniform(Duration::from_millis(5), Duration::from_millis(1));
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..1000 {
            let sample = latency.sample(&mut rng);
            assert!((Duration::from_millis(1)..=Duration::from_millis(5)).contains(&sample));
        }
    }
}
