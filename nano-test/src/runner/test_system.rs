//! A small system of the runner's own tests, declared inline: `front` asks `mid`, which asks
//! `leaf`, each wrapping its dependency's error with a message of its own (and keeping its code).

use nano::{Client, Ctx, NanoError, NewService};
use nano_server::System;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Ask {
    pub(crate) text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Answer {
    pub(crate) text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MidAsk {
    pub(crate) text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct LeafAsk {
    pub(crate) text: String,
}

pub(crate) mod front {
    nano::api! { service "front"; fn ask(super::Ask) -> super::Answer = "front.Ask", POST "/"; }
}
pub(crate) mod mid {
    nano::api! { service "mid"; fn ask(super::MidAsk) -> super::Answer = "mid.Ask", POST "/"; }
}
pub(crate) mod leaf {
    nano::api! { service "leaf"; fn ask(super::LeafAsk) -> super::Answer = "leaf.Ask", POST "/"; }
}

pub(crate) struct Front(pub(crate) Client);

impl front::Handler for Front {
    async fn ask(&self, ctx: &Ctx, req: Ask) -> Result<Answer, NanoError> {
        let answer = self.0.call(ctx, MidAsk { text: req.text }).await;
        let answer = answer.map_err(|err| NanoError::wrap(err, "mid failure"))?;
        Ok(Answer {
            text: format!("front_{}", answer.text),
        })
    }
}

struct Mid(Client);

impl mid::Handler for Mid {
    async fn ask(&self, ctx: &Ctx, req: MidAsk) -> Result<Answer, NanoError> {
        let answer = self.0.call(ctx, LeafAsk { text: req.text }).await;
        let answer = answer.map_err(|err| NanoError::wrap(err, "leaf failure"))?;
        Ok(Answer {
            text: format!("mid_{}", answer.text),
        })
    }
}

struct Leaf;

impl leaf::Handler for Leaf {
    async fn ask(&self, _ctx: &Ctx, req: LeafAsk) -> Result<Answer, NanoError> {
        Ok(Answer {
            text: format!("leaf_{}", req.text),
        })
    }
}

/// `front`, built with its client of `mid`.
pub(crate) fn front_service() -> NewService {
    front::service(|deps| Ok(Front(deps.client(mid::NAME)?)))
}

/// The chain, with the three layouts of the nano article's shape: everything in one process
/// (`one`), `front` apart from `mid` and `leaf` (`two`), one service per process (`three`), and
/// `three` over NATS with two replicas of `mid` and `leaf` (`three-twice`).
pub(crate) fn system() -> System {
    System::new("the chain")
        .service(&front::API, front_service)
        .service(&mid::API, || {
            mid::service(|deps| Ok(Mid(deps.client(leaf::NAME)?)))
        })
        .service(&leaf::API, || leaf::service(|_| Ok(Leaf)))
        .server("all", "All three.", &["front", "mid", "leaf"], &["front"])
        .server("two-a", "front.", &["front"], &["front"])
        .server("two-b", "mid and leaf.", &["mid", "leaf"], &["mid"])
        .server("three-a", "front.", &["front"], &["front"])
        .server("three-b", "mid.", &["mid"], &["mid"])
        .server("three-c", "leaf.", &["leaf"], &["leaf"])
        .layout("one", &["all"])
        .layout("two", &["two-a", "two-b"])
        .layout("three", &["three-a", "three-b", "three-c"])
        .nats_layout(
            "three-twice",
            &["three-a", "three-b", "three-c", "three-b", "three-c"],
        )
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Verify {
    pub(crate) token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Verified {
    pub(crate) user: String,
}

pub(crate) mod gate {
    nano::api! { service "gate"; fn verify(super::Verify) -> super::Verified = "gate.Verify"; }
}

/// Accepts the token `good` as the user `ada`.
struct Gate;

impl gate::Handler for Gate {
    async fn verify(&self, _ctx: &Ctx, req: Verify) -> Result<Verified, NanoError> {
        match req.token.as_str() {
            "good" => Ok(Verified { user: "ada".into() }),
            _ => Err(NanoError::new(
                nano_wire::codes::UNAUTHORIZED,
                "unknown token",
            )),
        }
    }
}

/// The chain behind an edge: `front.Ask` needs a bearer token that the `gate` service accepts.
pub(crate) fn guarded_system() -> System {
    system()
        .service(&gate::API, || gate::service(|_| Ok(Gate)))
        .auth(
            nano_wire::EdgeAuth::new(
                gate::NAME,
                |query: nano_wire::AuthQuery| Verify { token: query.token },
                |verified: Verified| verified.user,
            )
            .protect::<Ask>(),
        )
}
