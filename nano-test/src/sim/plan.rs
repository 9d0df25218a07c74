//! [`FaultPlan`]: what the simulated network does to calls, as code or as JSON.

use super::error::SimError;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a message takes to travel one way along an edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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

    /// Sets the transport timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn injects_faults(&self) -> bool {
        self.latency != Latency::None || self.drop_rate > 0.0
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The request is lost; the caller gets `S-UNAVAILABLE`.
    Drop,
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

/// A seeded description of an unreliable network: latency, loss and timeouts per edge, and
/// scripted faults. Build it in code or load it from JSON.
///
/// ```
/// use std::time::Duration;
/// use nano_test::sim::{EdgeFaults, Fault, FaultPlan, Latency};
///
/// let plan = FaultPlan::new(42)
///     .all_edges(EdgeFaults::new().latency(Latency::fixed(Duration::from_millis(200))))
///     .edge("svc2", "svc1", EdgeFaults::new().drop_rate(0.2))
///     .nth_call_to("svc3", 3, Fault::Drop);
/// let json = serde_json::to_string(&plan)?;
/// assert_eq!(FaultPlan::from_json(&json)?, plan);
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
            if !(0.0..=1.0).contains(&faults.drop_rate) {
                return Err(format!(
                    "{place}: drop_rate must be between 0 and 1, not {}",
                    faults.drop_rate
                ));
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
    fn uniform_latency_stays_in_range() {
        let latency = Latency::uniform(Duration::from_millis(5), Duration::from_millis(1));
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..1000 {
            let sample = latency.sample(&mut rng);
            assert!((Duration::from_millis(1)..=Duration::from_millis(5)).contains(&sample));
        }
    }
}
