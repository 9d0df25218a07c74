//! Declared APIs: the generated dispatch, services built from their dependencies, the
//! dependency graph the set knows, the fallback for missing services, and every kind of drift
//! between a declaration and a set being refused.

use std::sync::{Arc, Mutex};

use nano::{Client, Ctx, NanoError, NewService, ServiceSet, SharedService, codes};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Order {
    pub(crate) item: String,
}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Placed {
    pub(crate) id: String,
}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Reserve {
    pub(crate) item: String,
}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Audit {}

mod orders {
    use super::*;
    nano::api! {
        /// Takes orders; reserves stock through `inventory`.
        service "orders";
        /// Places an order.
        fn place(Order) -> Placed = "orders.Order", POST "/";
        /// An internal check that is not served over HTTP.
        fn audit(Audit) -> () = "orders.Audit";
    }
}

mod inventory {
    use super::*;
    nano::api! {
        service "inventory";
        fn reserve(Reserve) -> () = "inventory.Reserve", POST "/reserve";
    }
}

struct Orders {
    inventory: Client,
}

impl orders::Handler for Orders {
    async fn place(&self, ctx: &Ctx, req: Order) -> Result<Placed, NanoError> {
        self.inventory
            .call(
                ctx,
                Reserve {
                    item: req.item.clone(),
                },
            )
            .await?;
        Ok(Placed {
            id: format!("order-{}", req.item),
        })
    }

    async fn audit(&self, _ctx: &Ctx, _req: Audit) -> Result<(), NanoError> {
        Ok(())
    }
}

struct Inventory {
    reserved: Arc<Mutex<Vec<String>>>,
}

impl inventory::Handler for Inventory {
    async fn reserve(&self, _ctx: &Ctx, req: Reserve) -> Result<(), NanoError> {
        self.reserved.lock().unwrap().push(req.item);
        Ok(())
    }
}

fn orders() -> NewService {
    orders::service(|deps| {
        Ok(Orders {
            inventory: deps.client(inventory::NAME)?,
        })
    })
}

fn inventory(reserved: &Arc<Mutex<Vec<String>>>) -> NewService {
    let reserved = Arc::clone(reserved);
    inventory::service(move |_| Ok(Inventory { reserved }))
}

#[tokio::test]
async fn a_declared_service_is_built_from_its_dependencies_and_dispatches_by_type() {
    let reserved = Arc::default();
    let set = ServiceSet::builder()
        .service(orders())
        .service(inventory(&reserved))
        .build()
        .unwrap();
    let client = set.client("test", orders::NAME).unwrap();
    let placed = client
        .call(
            &Ctx::new(),
            Order {
                item: "book".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(placed.id, "order-book");
    assert_eq!(*reserved.lock().unwrap(), ["book"]);
    client.call(&Ctx::new(), Audit {}).await.unwrap();

    // The graph comes from the construction; there is no second list of dependencies.
    assert_eq!(
        set.dependencies("orders"),
        Some(&["inventory".to_owned()][..])
    );
    assert_eq!(set.dependencies("inventory"), Some(&[][..]));
    assert_eq!(set.dependencies("nope"), None);
    assert!(std::ptr::eq(set.api("orders").unwrap(), &orders::API));
}

#[tokio::test]
async fn an_undeclared_request_type_cannot_be_dispatched() {
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct Stray {}
    impl nano::Request for Stray {
        type Response = ();
        const NAME: &'static str = "orders.Stray";
    }
    let set = ServiceSet::builder()
        .service(orders())
        .service(inventory(&Arc::default()))
        .build()
        .unwrap();
    let err = set
        .client("test", "orders")
        .unwrap()
        .call(&Ctx::new(), Stray {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
    assert_eq!(err.to_string(), "bad request type: orders.Stray");
}

#[test]
fn the_declaration_lists_every_operation_with_its_route() {
    let api = &orders::API;
    assert_eq!(api.name(), "orders");
    let ops: Vec<_> = api
        .operations()
        .iter()
        .map(|op| {
            (
                op.request_type().name(),
                op.route().map(|r| (r.method, r.path)),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("orders.Order", Some(("POST", "/"))),
            ("orders.Audit", None)
        ]
    );
    assert_eq!(
        api.operation("orders.Order").unwrap().doc(),
        " Places an order.\n"
    );
    assert!(api.operation("orders.Nope").is_none());
    assert!(api.operations()[0].request_type().is::<Order>());
}

#[test]
fn a_missing_dependency_is_named_unless_a_fallback_supplies_it() {
    let err = ServiceSet::builder().service(orders()).build().unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
    assert!(
        err.to_string().contains(
            r#"service "orders" depends on service "inventory", which is not in the set"#
        ),
        "{err}"
    );

    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let reserved = Arc::default();
    let stand_in = SharedService::new(inventory::Served(Inventory {
        reserved: Arc::clone(&reserved),
    }));
    let set = ServiceSet::builder()
        .service(orders())
        .fallback(move |name| {
            seen.lock().unwrap().push(name.to_owned());
            Ok(stand_in.clone())
        })
        .build()
        .unwrap();
    assert_eq!(*asked.lock().unwrap(), ["inventory"]);
    assert!(set.contains("inventory"));
    assert_eq!(set.names().collect::<Vec<_>>(), ["orders", "inventory"]);

    let failing = ServiceSet::builder()
        .service(orders())
        .fallback(|name| Err(NanoError::unavailable(format!("no address for {name}"))))
        .build()
        .unwrap_err();
    assert_eq!(failing.code(), codes::UNAVAILABLE);
    assert!(
        failing.to_string().contains("no address for inventory"),
        "{failing}"
    );
}

#[test]
fn a_service_added_under_another_name_than_its_declaration_is_refused() {
    // A hand-written constructor that names the service differently from its declared API.
    let renamed = NewService::construct("shop", |deps| {
        Ok(orders::Served(Orders {
            inventory: deps.client(inventory::NAME)?,
        }))
    });
    let err = ServiceSet::builder()
        .service(renamed)
        .service(inventory(&Arc::default()))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert!(
        err.to_string().contains(
            r#"service added as "shop" is named "orders" and declares the API of "orders""#
        ),
        "{err}"
    );
}

#[test]
fn a_failed_construction_fails_the_build_with_the_service_named() {
    let broken = orders::service(|_deps| -> Result<Orders, NanoError> {
        Err(NanoError::msg("database is down"))
    });
    let err = ServiceSet::builder().service(broken).build().unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert_eq!(
        err.to_string(),
        r#"init of service "orders" failed :: database is down"#
    );
}
