//! The listener's edge authentication against a plain HTTP client: tokens missing, malformed,
//! refused, forbidden and good; the auth service failing or absent; nothing read or logged that
//! should not be.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nano::{AnyRequest, Ctx, ErrorBody, NanoError, Outcome, Service, ServiceSet, codes};
use nano_http::{Endpoint, HttpListener};
use nano_server::Listener;
use nano_wire::{AuthQuery, EdgeAuth};
use serde::{Deserialize, Serialize};

use crate::support::{Server, bounded};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Verify {
    token: String,
    request: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Verified {
    user: String,
}

impl nano::Request for Verify {
    type Response = Verified;
    const NAME: &'static str = "gate.Verify";
}

/// Protected: answers who the edge said the caller is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Whoami {
    note: String,
}

/// Not protected.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Open {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Seen {
    user: Option<String>,
}

impl nano::Request for Whoami {
    type Response = Seen;
    const NAME: &'static str = "desk.Whoami";
}

impl nano::Request for Open {
    type Response = Seen;
    const NAME: &'static str = "desk.Open";
}

/// The auth service: `t-ada` may do anything, `t-guest` nothing, `t-down` finds it down,
/// `t-odd` gets a client error that is not an auth code; every other token is unknown.
struct Gate {
    asked: Arc<AtomicUsize>,
}

impl Service for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        self.asked.fetch_add(1, Ordering::SeqCst);
        nano::dispatch!(req, {
            Verify => |r| match r.token.as_str() {
                "t-ada" => Ok(Verified { user: "ada".into() }),
                "t-nobody" => Ok(Verified { user: String::new() }),
                "t-guest" => Err(NanoError::new(
                    nano_wire::codes::FORBIDDEN,
                    format!("guests may not call {}", r.request),
                )),
                "t-down" => Err(NanoError::unavailable("the token store is down")),
                "t-odd" => Err(NanoError::bad_request("odd token")),
                _ => Err(NanoError::new(nano_wire::codes::UNAUTHORIZED, "unknown token")),
            },
        })
    }
}

struct Desk;

impl Service for Desk {
    fn name(&self) -> &str {
        "desk"
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let seen = Seen {
            user: ctx.metadata("user").map(str::to_owned),
        };
        nano::dispatch!(req, {
            Whoami => |_| Ok(seen.clone()),
            Open => |_| Ok(seen.clone()),
        })
    }
}

fn edge() -> EdgeAuth {
    EdgeAuth::new(
        "gate",
        |q: AuthQuery| Verify {
            token: q.token,
            request: q.request,
        },
        |v: Verified| v.user,
    )
    .protect::<Whoami>()
}

fn desk_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post::<Whoami>("/me"),
        Endpoint::post::<Open>("/open"),
    ]
}

async fn start(asked: &Arc<AtomicUsize>, body_limit: usize) -> Server {
    let set = ServiceSet::builder()
        .service(Gate {
            asked: Arc::clone(asked),
        })
        .service(Desk)
        .build()
        .unwrap();
    Server::start_with(set, |listener| {
        listener
            .expose("desk", desk_endpoints())
            .unwrap()
            .body_limit(body_limit)
            .auth(edge())
    })
    .await
}

/// Status and body of a POST with `authorization`.
async fn post(
    server: &Server,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn error(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("not an error body ({err}): {body}"))
}

#[tokio::test]
async fn a_protected_endpoint_answers_by_the_token() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 1 << 20).await;

    let (status, body) = post(&server, "/desk/me", Some("Bearer t-ada"), "{}").await;
    assert_eq!((status, body.as_str()), (200, r#"{"user":"ada"}"#));
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    let cases = [
        (None, 401, "C-UNAUTHORIZED", "needs a bearer token"),
        (
            Some("Basic dDphZGE="),
            401,
            "C-UNAUTHORIZED",
            "another scheme",
        ),
        (Some("Bearer "), 401, "C-UNAUTHORIZED", "no token"),
        (Some("Bearer t ada"), 401, "C-UNAUTHORIZED", "characters"),
    ];
    for (authorization, status, code, fragment) in cases {
        let (got, body) = post(&server, "/desk/me", authorization, "{}").await;
        let body = error(&body);
        assert_eq!(
            (got, body.code.as_str()),
            (status, code),
            "{authorization:?}: {body:?}"
        );
        assert!(body.msg.contains(fragment), "{authorization:?}: {body:?}");
    }
    // A malformed header never reaches the auth service.
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    let cases = [
        ("Bearer t-who", 401, "C-UNAUTHORIZED", "unknown token"),
        (
            "Bearer t-odd",
            401,
            "C-UNAUTHORIZED",
            "the token was refused :: odd token",
        ),
        (
            "Bearer t-nobody",
            401,
            "C-UNAUTHORIZED",
            "the auth service accepted the token but named no user",
        ),
        (
            "Bearer t-guest",
            403,
            "C-FORBIDDEN",
            "guests may not call desk.Whoami",
        ),
        (
            "Bearer t-down",
            500,
            "S-UNAVAILABLE",
            "cannot authenticate the request :: the token store is down",
        ),
    ];
    for (authorization, status, code, message) in cases {
        let (got, body) = post(&server, "/desk/me", Some(authorization), "{}").await;
        let body = error(&body);
        assert_eq!(
            (got, body.code.as_str()),
            (status, code),
            "{authorization}: {body:?}"
        );
        assert_eq!(body.msg, message, "{authorization}");
    }
    assert_eq!(asked.load(Ordering::SeqCst), 6);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_open_endpoint_needs_no_token_and_ignores_one() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 1 << 20).await;
    for authorization in [None, Some("Bearer t-ada"), Some("Basic junk")] {
        let (status, body) = post(&server, "/desk/open", authorization, "{}").await;
        // The identity comes from the edge only, and the edge does not run here.
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"user":null}"#),
            "{authorization:?}"
        );
    }
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unauthenticated_request_is_refused_before_its_body_is_read() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 16).await;
    let big = format!(r#"{{"note":"{}"}}"#, "x".repeat(64));
    let (status, body) = post(&server, "/desk/me", None, &big).await;
    assert_eq!(
        (status, error(&body).code.as_str()),
        (401, "C-UNAUTHORIZED")
    );
    // Authenticated, the same body meets the limit.
    let (status, body) = post(&server, "/desk/me", Some("Bearer t-ada"), &big).await;
    assert_eq!(
        (status, error(&body).code.as_str()),
        (413, codes::PAYLOAD_TOO_LARGE)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_listener_without_its_auth_service_does_not_start() {
    let set = ServiceSet::builder().service(Desk).build().unwrap();
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose("desk", desk_endpoints())
        .unwrap()
        .auth(edge());
    let err = bounded(nano_server::serve_until(
        set,
        vec![listener.boxed()],
        std::future::pending(),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
    assert!(err.to_string().contains("\"gate\""), "{err}");

    // Exposing nothing protected, it needs none.
    let set = ServiceSet::builder().service(Desk).build().unwrap();
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose("desk", [Endpoint::post::<Open>("/open")])
        .unwrap()
        .auth(edge());
    let server = Server::start_with(set, |_| listener).await;
    let (status, _) = post(&server, "/desk/open", None, "{}").await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}
