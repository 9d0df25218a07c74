//! The shop's business logic in-process, with inventory mocked and real.

use nano::{Ctx, ServiceSet};
use shop::api::{inventory, orders};

#[tokio::test]
async fn an_order_reserves_its_items_until_stock_runs_out() -> Result<(), Box<dyn std::error::Error>>
{
    shop::system().validate()?;
    let set = shop::system().all(ServiceSet::builder()).build()?;
    let orders = set.client("test", orders::NAME)?;
    let order = |quantity| orders::Place {
        item: "tea".into(),
        quantity,
    };
    assert_eq!(orders.call(&Ctx::new(), order(7)).await?.left, 3);
    let err = orders.call(&Ctx::new(), order(4)).await.unwrap_err();
    assert_eq!(err.code(), shop::OUT_OF_STOCK);
    assert_eq!(
        err.to_string(),
        r#"inventory failure :: only 3 of "tea" left"#
    );
    let err = orders.call(&Ctx::new(), order(0)).await.unwrap_err();
    assert_eq!(err.code(), nano::codes::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn orders_with_inventory_mocked() -> Result<(), Box<dyn std::error::Error>> {
    let set = ServiceSet::builder()
        .service(shop::orders())
        .service(nano_test::request_fn(
            inventory::NAME,
            |_ctx, r: inventory::Reserve| async move {
                Ok(inventory::Reserved {
                    left: 100 - r.quantity,
                })
            },
        ))
        .build()?;
    let placed = set
        .client("test", orders::NAME)?
        .call(
            &Ctx::new(),
            orders::Place {
                item: "x".into(),
                quantity: 1,
            },
        )
        .await?;
    assert_eq!(placed.left, 99);
    assert_eq!(set.dependencies(orders::NAME).unwrap(), ["inventory"]);
    let split = shop::system();
    let plan = split.plan("split")?;
    assert_eq!(plan[0].server.name, "shop-inventory");
    Ok(())
}
