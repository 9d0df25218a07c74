//! `System`: validation names every mistake, plans start peers first, remote services follow
//! from the dependencies the services ask for.

use nano::{Client, Ctx, NanoError, codes};
use nano_server::{System, Transport};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct A {}
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct B {}
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct C {}

mod a {
    nano::api! { service "a"; fn call(super::A) -> () = "a.A", POST "/"; }
}
mod b {
    nano::api! { service "b"; fn call(super::B) -> () = "b.B", POST "/"; }
}
mod c {
    nano::api! { service "c"; fn call(super::C) -> () = "c.C", POST "/"; }
}

/// Calls the service it is given, whatever it is asked.
struct Forward(Client);

impl a::Handler for Forward {
    async fn call(&self, ctx: &Ctx, _: A) -> Result<(), NanoError> {
        self.0.call(ctx, B {}).await
    }
}
impl b::Handler for Forward {
    async fn call(&self, ctx: &Ctx, _: B) -> Result<(), NanoError> {
        self.0.call(ctx, C {}).await
    }
}

struct Leaf;
impl c::Handler for Leaf {
    async fn call(&self, _: &Ctx, _: C) -> Result<(), NanoError> {
        Ok(())
    }
}

/// a → b → c.
fn chain() -> System {
    System::new("chain")
        .service(&a::API, || {
            a::service(|deps| Ok(Forward(deps.client("b")?)))
        })
        .service(&b::API, || {
            b::service(|deps| Ok(Forward(deps.client("c")?)))
        })
        .service(&c::API, || c::service(|_| Ok(Leaf)))
        .server("sa", "a", &["a"], &["a"])
        .server("sb", "b", &["b"], &["b"])
        .server("sc", "c", &["c"], &["c"])
        .server("sbc", "b and c", &["b", "c"], &["b"])
}

#[test]
fn a_plan_starts_every_server_after_its_peers() {
    let system = chain()
        .layout("split", &["sa", "sb", "sc"])
        .layout("pair", &["sa", "sbc"]);
    system.validate().unwrap();
    let order: Vec<String> = system
        .plan("split")
        .unwrap()
        .into_iter()
        .map(|p| format!("{}:{:?}", p.server.name, p.peers))
        .collect();
    assert_eq!(
        order,
        [r#"sc:{}"#, r#"sb:{"c": "sc"}"#, r#"sa:{"b": "sb"}"#]
    );
    let pair = system.plan("pair").unwrap();
    assert_eq!(pair[0].server.name, "sbc");
    assert!(pair[0].peers.is_empty());
}

#[test]
fn a_layout_that_leaves_a_dependency_unserved_is_refused() {
    let system = chain().layout("broken", &["sa", "sc"]);
    let err = system.validate().unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
    assert_eq!(
        err.to_string(),
        r#"in layout "broken", server "sa" needs service "b", which none of its servers expose"#
    );
    let twice = chain().layout("twice", &["sa", "sb", "sbc", "sc"]);
    let err = twice.plan("twice").unwrap_err();
    assert!(
        err.to_string()
            .contains("which several of its servers expose"),
        "{err}"
    );
}

#[test]
fn a_nats_layout_needs_no_peers_and_may_run_replicas() {
    let system = chain()
        .nats_layout("split-nats", &["sa", "sb", "sc"])
        .nats_layout("replicas", &["sa", "sbc", "sb", "sbc", "sc", "sc"]);
    system.validate().unwrap();
    assert_eq!(
        system.layout_spec("split-nats").unwrap().transport,
        Transport::Nats
    );
    assert_eq!(
        system.layout_spec("split-nats").unwrap().transport.name(),
        "NATS"
    );
    // Listed order, no peers: the broker finds the services.
    let order: Vec<String> = system
        .plan("split-nats")
        .unwrap()
        .into_iter()
        .map(|p| format!("{}:{:?}", p.server.name, p.peers))
        .collect();
    assert_eq!(order, ["sa:{}", "sb:{}", "sc:{}"]);
    // Every replica is planned; b exposed by two different servers is fine over NATS.
    let replicas: Vec<String> = system
        .plan("replicas")
        .unwrap()
        .into_iter()
        .map(|p| p.server.name)
        .collect();
    assert_eq!(replicas, ["sa", "sbc", "sb", "sbc", "sc", "sc"]);

    // What the broker cannot find is still refused.
    let err = chain()
        .nats_layout("broken", &["sa", "sc"])
        .validate()
        .unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
    assert_eq!(
        err.to_string(),
        r#"in layout "broken", server "sa" needs service "b", which none of its servers expose"#
    );
}

#[test]
fn replicas_of_a_server_need_a_nats_layout() {
    let err = chain()
        .layout("twice", &["sa", "sb", "sc", "sc"])
        .plan("twice")
        .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert_eq!(
        err.to_string(),
        r#"HTTP layout "twice" lists server "sc" twice; replicas of a server share its requests over NATS only (System::nats_layout)"#
    );
    assert_eq!(
        chain()
            .layout_over(Transport::Http, "plain", &["sc"])
            .layout_spec("plain")
            .unwrap()
            .transport,
        Transport::Http
    );
}

#[test]
fn unknown_names_are_named_with_what_is_known() {
    let err = chain().plan("nope").unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
    assert_eq!(
        err.to_string(),
        r#"system "chain" has no layout "nope" (known: )"#
    );

    let err = chain()
        .server("bad", "x", &["zz"], &[])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"system "chain" has no service "zz" (its services: a, b, c)"#
    );

    let err = chain()
        .server("lazy", "x", &["c"], &["a"])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"server "lazy" exposes "a", which it does not run"#
    );

    let err = chain()
        .layout("l", &["sa", "ghost"])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layout "l" names unknown server "ghost""#
    );
}

#[test]
fn a_dependency_outside_the_system_is_named() {
    let system = System::new("half")
        .service(&a::API, || {
            a::service(|deps| Ok(Forward(deps.client("b")?)))
        })
        .server("sa", "a", &["a"], &["a"]);
    let err = system
        .remote_services(system.server_spec("sa").unwrap())
        .unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
    assert_eq!(
        err.to_string(),
        r#"server "sa" depends on service "b", which system "half" does not have"#
    );
}

#[test]
fn duplicate_and_misnamed_services_are_refused() {
    let err = chain()
        .service(&c::API, || c::service(|_| Ok(Leaf)))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"system "chain" has two services named "c""#
    );
    let err = System::new("x")
        .service(&a::API, || c::service(|_| Ok(Leaf)))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"the service added with the API of "a" is named "c""#
    );
}

#[tokio::test]
async fn the_whole_system_runs_in_one_set() {
    let set = chain().all(nano::ServiceSet::builder()).build().unwrap();
    set.client("test", "a")
        .unwrap()
        .call(&Ctx::new(), A {})
        .await
        .unwrap();
    assert_eq!(set.dependencies("a"), Some(&["b".to_owned()][..]));
}
