//! The edge in process: a test set built from a system runs its edge for `call_at_edge`, and a
//! test set without an edge refuses to pretend it has one.

use nano::{Ctx, NanoError};
use nano_server::System;
use nano_test::TestSet;
use nano_wire::{AuthQuery, EdgeAuth};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Verify {
    pub(crate) token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Me {
    pub(crate) user: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct WhoAmI {}

mod gate {
    nano::api! { service "gate"; fn verify(super::Verify) -> super::Me = "gate.Verify"; }
}
mod desk {
    nano::api! { service "desk"; fn who(super::WhoAmI) -> super::Me = "desk.WhoAmI", POST "/"; }
}

struct Gate;

impl gate::Handler for Gate {
    async fn verify(&self, _ctx: &Ctx, req: Verify) -> Result<Me, NanoError> {
        match req.token.as_str() {
            "t-ada" => Ok(Me { user: "ada".into() }),
            _ => Err(NanoError::new(
                nano_wire::codes::UNAUTHORIZED,
                "unknown token",
            )),
        }
    }
}

/// Answers with whoever the edge authenticated, or nobody.
struct Desk;

impl desk::Handler for Desk {
    async fn who(&self, ctx: &Ctx, _req: WhoAmI) -> Result<Me, NanoError> {
        Ok(Me {
            user: ctx.metadata("user").unwrap_or_default().to_owned(),
        })
    }
}

fn system() -> System {
    System::new("front desk")
        .service(&gate::API, || gate::service(|_| Ok(Gate)))
        .service(&desk::API, || desk::service(|_| Ok(Desk)))
        .auth(
            EdgeAuth::new(
                gate::NAME,
                |query: AuthQuery| Verify { token: query.token },
                |me: Me| me.user,
            )
            .protect::<WhoAmI>(),
        )
}

#[tokio::test]
async fn a_test_set_of_a_system_runs_its_edge() -> Result<(), NanoError> {
    let t = TestSet::builder().system(&system()).build()?;
    let me = t
        .call_at_edge(Some("Bearer t-ada"), desk::NAME, WhoAmI {})
        .await?;
    assert_eq!(me.user, "ada");
    for authorization in [None, Some("Bearer t-bob"), Some("Basic YWRhOnB3")] {
        let err = t
            .call_at_edge(authorization, desk::NAME, WhoAmI {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), "C-UNAUTHORIZED", "{authorization:?}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn call_at_edge_without_an_edge_is_an_error_not_an_unchecked_call() -> Result<(), NanoError> {
    let t = TestSet::builder()
        .services(|builder| system().all(builder))
        .build()?;
    let err = t
        .call_at_edge(None, desk::NAME, WhoAmI {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("call_at_edge needs an edge"),
        "{err}"
    );
    // A plain call is not an edge call: it reaches the service, which finds nobody.
    assert_eq!(t.call(desk::NAME, WhoAmI {}).await?.user, "");
    Ok(())
}
