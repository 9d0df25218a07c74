//! Named invariants: async checks of what a run left behind, counted by name in the run's
//! report. [`Simulation::invariant`](super::Simulation::invariant) checks them after every run;
//! the runner's `chaos` after every request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::error::BoxError;
use super::network::Network;

/// The future of one check; it borrows the check and what it looks at.
type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + 'a>>;

/// An invariant's check, object-safe: async closures (`async |world: &W| { … }`) are checks.
pub(crate) trait Check<W: ?Sized>: Send + Sync {
    fn check<'a>(&'a self, world: &'a W) -> CheckFuture<'a>;
}

impl<W: ?Sized, F> Check<W> for F
where
    F: AsyncFn(&W) -> Result<(), BoxError> + Send + Sync,
{
    fn check<'a>(&'a self, world: &'a W) -> CheckFuture<'a> {
        Box::pin(self(world))
    }
}

/// Named checks of a `W`, in the order they were added.
pub(crate) struct Invariants<W: ?Sized> {
    list: Vec<(String, Arc<dyn Check<W>>)>,
}

impl<W: ?Sized> Default for Invariants<W> {
    fn default() -> Self {
        Invariants { list: Vec::new() }
    }
}

impl<W: ?Sized> Clone for Invariants<W> {
    fn clone(&self) -> Self {
        Invariants {
            list: self.list.clone(),
        }
    }
}

// A simulation stays usable across `catch_unwind`, as it was before it held checks: it catches
// the panics of bodies and checks itself, and a check is a shared `Fn` whose captured state is
// the test's own (a check that panics fails its run like a body that panics).
impl<W: ?Sized> std::panic::UnwindSafe for Invariants<W> {}
impl<W: ?Sized> std::panic::RefUnwindSafe for Invariants<W> {}

/// The names, since checks have no useful `Debug`.
impl<W: ?Sized> fmt::Debug for Invariants<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<W: ?Sized> Invariants<W> {
    pub(crate) fn add(&mut self, name: impl Into<String>, check: impl Check<W> + 'static) {
        self.list.push((name.into(), Arc::new(check)));
    }

    /// Adds every invariant of `other`, after these.
    #[cfg(feature = "runner")]
    pub(crate) fn extend(&mut self, other: &Invariants<W>) {
        self.list.extend(other.list.iter().cloned());
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(name, _)| name.as_str())
    }

    /// Lists every invariant in the run's report, so that one never checked shows as such.
    ///
    /// # Errors
    ///
    /// When two invariants share a name: their counts could not be told apart.
    pub(crate) fn declare(&self, net: &Network) -> Result<(), String> {
        for (i, name) in self.names().enumerate() {
            if self.names().take(i).any(|earlier| earlier == name) {
                return Err(format!("two invariants are named {name:?}"));
            }
            net.declare_invariant(name);
        }
        Ok(())
    }

    /// Checks every invariant of `world`, in order, and counts each in the run's report. The
    /// calls the checks make pass the network quietly (see `Network::quiet`), so the faults
    /// being checked cannot fail the checks themselves and the run's trace stays the same.
    ///
    /// Fails with the broken ones as `name: why`, in order, joined by `; `.
    pub(crate) async fn check(&self, world: &W, net: &Network) -> Result<(), BoxError> {
        let _quiet = net.quiet();
        let mut broken = Vec::new();
        for (name, check) in &self.list {
            let result = check.check(world).await;
            net.count_invariant(name, result.is_ok());
            if let Err(err) = result {
                broken.push(format!("{name}: {err}"));
            }
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(broken.join("; ").into())
        }
    }
}
