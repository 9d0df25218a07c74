//! Business logic that works in-process and changes its behaviour once a wire sits between
//! caller and callee. Shared by the in-process fidelity tests and the HTTP tests, which show that
//! the transport-fidelity hook and the real transport agree on each.

use nano::{Client, Ctx, Dependencies, NanoError, Outcome, Request, Service};
use nano_test::request_fn;
use serde::{Deserialize, Serialize};

/// The error a quota service attaches as a source.
#[derive(Debug)]
pub(crate) struct QuotaExceeded;

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("quota exceeded")
    }
}

impl std::error::Error for QuotaExceeded {}

/// Asks `billing` (and `quota`) to charge an amount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Charge {
    pub(crate) amount: u64,
}

/// The answer to [`Charge`] and [`Transfer`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Charged {
    pub(crate) note: String,
}

impl Request for Charge {
    type Response = Charged;
    const NAME: &'static str = "billing.Charge";
}

/// `billing` asks `quota` first and, in-process, recognises the quota error by downcasting its
/// source: business logic that works in a test and breaks over a wire.
#[derive(Default)]
pub(crate) struct Billing {
    quota: Option<Client>,
}

impl Service for Billing {
    fn name(&self) -> &str {
        "billing"
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        self.quota = Some(deps.client("quota")?);
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: nano::AnyRequest) -> Outcome {
        let quota = self
            .quota
            .as_ref()
            .ok_or_else(|| NanoError::internal("no init"))?;
        nano::dispatch!(req, {
            Charge => |r| match quota.call(&ctx, r).await {
                Ok(_) => Ok(Charged { note: "charged".into() }),
                Err(err) if err.find_source::<QuotaExceeded>().is_some() => {
                    Ok(Charged { note: "retry tomorrow".into() })
                }
                Err(err) => Err(NanoError::wrap(err, "quota failure")),
            },
        })
    }
}

/// The billing example's services: billing and a quota service that always refuses.
pub(crate) fn billing_services(builder: nano::ServiceSetBuilder) -> nano::ServiceSetBuilder {
    builder.service(Billing::default()).service(request_fn(
        "quota",
        |_ctx, _r: Charge| async move {
            Err::<Charged, _>(NanoError::internal("quota check failed").with_source(QuotaExceeded))
        },
    ))
}

/// A request whose field does not survive serde.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Transfer {
    pub(crate) amount: u64,
    #[serde(skip)]
    pub(crate) currency: String,
}

impl Request for Transfer {
    type Response = Charged;
    const NAME: &'static str = "bank.Transfer";
}

/// `bank` refuses a transfer without a currency, which is every transfer once it crossed a wire.
pub(crate) fn bank() -> impl Service {
    request_fn("bank", |_ctx, r: Transfer| async move {
        if r.currency.is_empty() {
            return Err(NanoError::bad_request("transfer without a currency"));
        }
        Ok(Charged {
            note: format!("{} {}", r.amount, r.currency),
        })
    })
}
