//! The generated calls of the example cluster, shared by the `it` and `http` test targets.

use nano_test::property::{Calls, GeneratedCall};
use proptest::prelude::*;
use services::api::{svc1, svc2, svc4};

/// Every request the example cluster takes, plus ones it must refuse with a coded error.
pub(crate) fn example_calls() -> SBoxedStrategy<GeneratedCall> {
    Calls::new()
        .with(
            svc2::NAME,
            any::<String>().prop_map(|param| svc2::Req { param }),
        )
        .with(svc2::NAME, Just(svc2::GetReq {}))
        .with(
            svc2::NAME,
            any::<String>().prop_map(|param| svc1::Req { param }),
        )
        .with(svc4::NAME, ".*".prop_map(|param| svc4::Req { param }))
        .with("no-such-service", Just(svc2::GetReq {}))
        .into_strategy()
        .unwrap()
}
