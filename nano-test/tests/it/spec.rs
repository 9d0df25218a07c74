//! One spec, written once, holds for snapshots, mock expectations and parity checks alike.

use nano::{NanoError, RequestId, ServiceSet};
use nano_test::request_fn;
use nano_test::{Deployment, Mock, ParityCheck, Spec, TestSet, snapshot};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    item: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Placed {
    id: String,
    item: String,
}

impl nano::Request for Order {
    type Response = Placed;
    const NAME: &'static str = "shop.Order";
}

/// Generated ids look like request ids; everything else is compared exactly.
const SPEC: &str = r#"{
  "rules": [
    {"path": "id", "action": "match", "matcher": {"regex": "^[0-9a-f]{32}$"}}
  ]
}"#;

fn spec() -> Spec {
    Spec::from_json(SPEC).unwrap()
}

fn shop() -> impl nano::Service {
    request_fn("shop", |_ctx, r: Order| async move {
        Ok(Placed {
            id: RequestId::generate().to_string(),
            item: r.item,
        })
    })
}

#[tokio::test]
async fn the_rule_redacts_snapshots() {
    let t = TestSet::builder()
        .service(shop())
        .spec(spec())
        .build()
        .unwrap();
    let placed = t
        .call(
            "shop",
            Order {
                id: String::new(),
                item: "tea".into(),
            },
        )
        .await;
    snapshot!(placed, t.spec(), @r#"
    response:
      id: "[matches ^[0-9a-f]{32}$]"
      item: tea
    "#);
}

#[tokio::test]
async fn the_rule_matches_mock_expectations() {
    let warehouse = Mock::new("warehouse");
    warehouse
        .expect::<Order>()
        .with(Order {
            id: "00000000000000000000000000000000".into(),
            item: "tea".into(),
        })
        .returning(Placed::default())
        .times(2);
    let t = TestSet::builder()
        .mock(warehouse)
        .spec(spec())
        .build()
        .unwrap();
    for _ in 0..2 {
        let order = Order {
            id: RequestId::generate().to_string(),
            item: "tea".into(),
        };
        t.call("warehouse", order).await.unwrap();
    }
    // An id that breaks the rule does not match: the call is unexpected and says why.
    let err = t
        .call(
            "warehouse",
            Order {
                id: "nope".into(),
                item: "tea".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("$.id: found \"nope\", which the matcher `matches ^[0-9a-f]{32}$` rejects"),
        "{err}"
    );
    let problems = t.into_mocks().pop().unwrap().finish().unwrap_err().problems;
    assert_eq!(problems.len(), 1);
}

#[tokio::test]
async fn the_rule_holds_in_parity_checks() -> Result<(), NanoError> {
    let deployment = |name: &str| -> Result<Deployment, NanoError> {
        Ok(Deployment::from_set(
            name,
            ServiceSet::builder().service(shop()).build()?,
            "test",
        ))
    };
    let order = Order {
        id: String::new(),
        item: "tea".into(),
    };
    let strict = ParityCheck::new([deployment("a")?, deployment("b")?])
        .request("shop", order.clone())
        .run()
        .await?;
    assert!(
        !strict.is_consistent(),
        "generated ids differ without the rule"
    );
    ParityCheck::new([deployment("a")?, deployment("b")?])
        .spec(spec())
        .request("shop", order)
        .run()
        .await?
        .assert_consistent();
    Ok(())
}
