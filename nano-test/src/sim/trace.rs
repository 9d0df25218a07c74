//! What a simulation records: every call, the faults injected into it, and their counts.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Identifies a call independently of timing: its edge and its 1-based index among that edge's
/// calls. The same test with the same faults makes the same calls, so a key names the same call
/// across runs; that is what lets a fault schedule be replayed and shrunk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallKey {
    /// The calling service (or test).
    pub caller: String,
    /// The called service.
    pub callee: String,
    /// Which call along this edge, from 1.
    pub nth: u64,
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} call #{}", self.caller, self.callee, self.nth)
    }
}

/// A fault as it was injected into one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InjectedFault {
    /// Network latency on the request and the response leg, in microseconds of virtual time.
    Latency {
        /// Delay before the callee sees the request.
        request_us: u64,
        /// Delay before the caller sees the response.
        response_us: u64,
    },
    /// An extra delay of the request, in microseconds.
    Delay {
        /// The delay.
        us: u64,
    },
    /// The request was lost.
    Drop,
    /// Caller and callee were on different sides of a partition.
    Partitioned,
    /// The caller got this error instead of reaching the callee.
    Error {
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// The callee never answered.
    Hang,
    /// The callee handled the request, but its response was lost.
    LoseResponse,
    /// The request was delivered twice; the caller got the second copy's answer.
    Duplicate,
    /// The callee crashed as the request reached it, and was back after `down_us`
    /// microseconds, rebuilt from its constructor.
    Crash {
        /// How long the callee stayed down.
        down_us: u64,
    },
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectedFault::Latency {
                request_us,
                response_us,
            } => write!(
                f,
                "latency {} ms + {} ms",
                *request_us as f64 / 1000.0,
                *response_us as f64 / 1000.0
            ),
            InjectedFault::Delay { us } => write!(f, "delayed {} ms", *us as f64 / 1000.0),
            InjectedFault::Drop => f.write_str("dropped"),
            InjectedFault::Partitioned => f.write_str("partitioned"),
            InjectedFault::Error { code, message } => write!(f, "error {code}: {message}"),
            InjectedFault::Hang => f.write_str("hung"),
            InjectedFault::LoseResponse => f.write_str("response lost"),
            InjectedFault::Duplicate => f.write_str("delivered twice"),
            InjectedFault::Crash { down_us: 0 } => f.write_str("callee crashed"),
            InjectedFault::Crash { down_us } => {
                write!(f, "callee crashed, down {} ms", *down_us as f64 / 1000.0)
            }
        }
    }
}

/// One fault of a schedule: which call, what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// The call.
    pub call: CallKey,
    /// The fault.
    pub fault: InjectedFault,
}

impl fmt::Display for ScheduledFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.fault)
    }
}

/// How a simulated call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceOutcome {
    /// The callee answered.
    Ok,
    /// The caller got an error with this code (empty for an uncoded error).
    Error {
        /// The error code.
        code: String,
    },
    /// The caller stopped waiting (its deadline passed or it was cancelled or dropped).
    Abandoned,
}

/// One call of a simulation, in virtual time since the simulation started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// The order in which calls started, from 0.
    pub seq: u64,
    /// Which call.
    pub call: CallKey,
    /// The wire name of the request type.
    pub request: String,
    /// When the call started, in microseconds of virtual time.
    pub start_us: u64,
    /// When it ended, in microseconds of virtual time.
    pub end_us: u64,
    /// How it ended.
    pub outcome: TraceOutcome,
    /// What was injected into it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<InjectedFault>,
    /// Whether the plan's transport timeout of the edge ended the call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl TraceEntry {
    /// Whether the simulation itself failed this call (a lost request or response, a
    /// partition, a scripted error, a transport timeout, a crash of the callee as the request
    /// reached it), rather than passing on the callee's answer.
    pub fn failed_by_network(&self) -> bool {
        self.timed_out
            || self.faults.iter().any(|fault| {
                matches!(
                    fault,
                    InjectedFault::Drop
                        | InjectedFault::Partitioned
                        | InjectedFault::Error { .. }
                        | InjectedFault::LoseResponse
                        | InjectedFault::Crash { .. }
                )
            })
    }
}

/// How many faults of each kind a simulation injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Calls that got latency or an extra delay.
    pub delayed: u64,
    /// Requests lost.
    pub dropped: u64,
    /// Calls across a partition.
    pub partitioned: u64,
    /// Calls ended by a transport timeout of the plan.
    pub timed_out: u64,
    /// Calls answered with a scripted error.
    pub errored: u64,
    /// Calls whose callee never answered.
    pub hung: u64,
    /// Calls whose callee handled the request but whose response was lost.
    pub responses_lost: u64,
    /// Requests delivered twice.
    pub duplicated: u64,
    /// Crashes of a callee.
    pub crashed: u64,
}

impl FaultCounts {
    /// The number of faults of every kind together.
    pub fn total(&self) -> u64 {
        self.delayed
            + self.dropped
            + self.partitioned
            + self.timed_out
            + self.errored
            + self.hung
            + self.responses_lost
            + self.duplicated
            + self.crashed
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delayed {}, dropped {}, partitioned {}, timed out {}, errored {}, hung {}, \
             responses lost {}, duplicated {}, crashed {}",
            self.delayed,
            self.dropped,
            self.partitioned,
            self.timed_out,
            self.errored,
            self.hung,
            self.responses_lost,
            self.duplicated,
            self.crashed
        )
    }
}

/// How often one named invariant held and broke in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantCount {
    /// The invariant's name.
    pub name: String,
    /// How many checks it passed.
    pub passed: u64,
    /// How many checks it failed.
    pub failed: u64,
}

impl fmt::Display for InvariantCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} passed {}, failed {}",
            self.name, self.passed, self.failed
        )
    }
}

/// The summary of one simulation run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimReport {
    /// The seed the run used.
    pub seed: u64,
    /// Calls made through the simulated network.
    pub calls: u64,
    /// Virtual time the run took, in microseconds.
    pub virtual_us: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// A digest of the whole trace: equal digests mean equal traces.
    pub trace_digest: String,
    /// Whether the plan was meant to inject faults but injected none.
    pub no_faults_injected: bool,
    /// Every named invariant the run checked, in the order they were first checked or declared,
    /// with how often each held and broke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<InvariantCount>,
}

impl SimReport {
    /// The virtual time the run took.
    pub fn virtual_time(&self) -> Duration {
        Duration::from_micros(self.virtual_us)
    }

    /// The counts of the invariant called `name`, when the run checked or declared it.
    pub fn invariant(&self, name: &str) -> Option<&InvariantCount> {
        self.invariants.iter().find(|count| count.name == name)
    }

    /// The names of the invariants that broke at least once.
    pub fn broken_invariants(&self) -> impl Iterator<Item = &str> {
        self.invariants
            .iter()
            .filter(|count| count.failed > 0)
            .map(|count| count.name.as_str())
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} calls in {:.3} s of virtual time; faults: {}; trace {}",
            self.seed,
            self.calls,
            self.virtual_us as f64 / 1e6,
            self.faults,
            self.trace_digest
        )?;
        for count in &self.invariants {
            write!(f, "; invariant {count}")?;
        }
        if self.no_faults_injected {
            f.write_str("; WARNING: the plan asks for faults but none were injected")?;
        }
        Ok(())
    }
}

/// A stable 64-bit FNV-1a digest, printed as 16 hex characters. Unlike `std`'s hashers it is the
/// same on every platform and release, so digests can be compared across runs and machines.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_sensitive() {
        assert_eq!(digest(b""), "cbf29ce484222325");
        assert_eq!(digest(b"a"), "af63dc4c8601ec8c");
        assert_ne!(digest(b"ab"), digest(b"ba"));
    }
}
