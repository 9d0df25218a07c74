//! Ready-made properties over generated calls.

use nano::{Ctx, NanoError};
use proptest::test_runner::TestCaseError;

use super::GeneratedCall;
use crate::CallOutcome;
use crate::parity::{Deployment, ParityCheck};
use crate::spec::Spec;

/// The property "every request gets a response of its declared type or a coded error, never a
/// panic": sends `call` to `deployment` and fails the case on an uncoded error or a response of
/// another type. A panic anywhere in the call tree fails the case too (the [`Property`] runner
/// catches it).
///
/// [`Property`]: super::Property
///
/// ```
/// use nano_test::Deployment;
/// use nano_test::property::{Calls, Property, answers_or_coded_error};
/// use proptest::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
/// let svc1 = nano_test::request_fn("svc1", |_ctx, r: Req| async move {
///     if r.param.is_empty() {
///         return Err(nano::NanoError::bad_request("param is empty"));
///     }
///     Ok(Resp { value: r.param })
/// });
/// let deployment = Deployment::in_process(nano::ServiceSet::builder().service(svc1))?;
/// let calls = Calls::new().with("svc1", ".*".prop_map(|param| Req { param })).into_strategy()?;
/// Property::new(calls)
///     .cases(64)
///     .run(|call| answers_or_coded_error(&deployment, call))
///     .await;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// A failed test case naming the request and what came back.
pub async fn answers_or_coded_error(
    deployment: &Deployment,
    call: GeneratedCall,
) -> Result<(), TestCaseError> {
    let request_type = call.request.request_type();
    let outcome = deployment
        .send(&Ctx::new(), &call.service, call.request)
        .await;
    match outcome {
        Ok(response) if response.type_name() == request_type.response_rust_name() => Ok(()),
        Ok(response) => Err(TestCaseError::fail(format!(
            "{} answered {} with a {}, not the declared {}",
            call.service,
            request_type.name(),
            response.type_name(),
            request_type.response_rust_name()
        ))),
        Err(err) if err.code().is_empty() => Err(TestCaseError::fail(uncoded(&call.service, &err))),
        Err(_) => Ok(()),
    }
}

fn uncoded(service: &str, err: &NanoError) -> String {
    format!(
        "{service} answered with an uncoded error (in {}): {err}",
        CallOutcome::from_error(err).to_value()
    )
}

/// The property "every deployment gives the same outcome": sends `call` to each of
/// `deployments` (the first is the baseline) and fails the case with the diff of every
/// difference, compared under `spec`. With an in-process-with-fidelity deployment and a real
/// transport's deployment this is the "fidelity matches the wire" property.
///
/// # Errors
///
/// A failed test case with the rendered differences; also when fewer than two deployments are
/// given.
pub async fn same_outcome(
    deployments: &[Deployment],
    spec: &Spec,
    call: GeneratedCall,
) -> Result<(), TestCaseError> {
    let check = ParityCheck::new(deployments.iter().cloned()).spec(spec.clone());
    let case = check
        .run_one(&call.service, &call.request)
        .await
        .map_err(|err| TestCaseError::fail(err.to_string()))?;
    if case.is_consistent() {
        Ok(())
    } else {
        Err(TestCaseError::fail(case.to_string()))
    }
}
