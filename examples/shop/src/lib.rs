//! A second example system, built only from the toolkit's public APIs and sharing nothing with
//! the example cluster: `orders` takes an order and reserves its items from `inventory`, which
//! keeps stock counts in memory.
//!
//! ```text
//! orders ──► inventory
//! ```
//!
//! Two layouts: `monolith` (`shop-all` runs both) and `split` (`shop-orders` calls
//! `shop-inventory` over HTTP).
//!
//! ```
//! use nano::{Ctx, ServiceSet};
//! use shop::api::orders;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
//! let set = shop::system().all(ServiceSet::builder()).build()?;
//! let placed = set
//!     .client("test", orders::NAME)?
//!     .call(&Ctx::new(), orders::Place { item: "tea".into(), quantity: 2 })
//!     .await?;
//! assert_eq!(placed.left, 8);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use nano::{Client, Ctx, NanoError, NewService};
use nano_server::System;

/// The two services' APIs.
pub mod api {
    /// `inventory`: stock counts.
    pub mod inventory {
        use serde::{Deserialize, Serialize};

        /// Takes `quantity` of `item` out of stock.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Reserve {
            /// What to reserve.
            pub item: String,
            /// How many.
            pub quantity: u32,
        }

        /// What is left of the item after a reservation.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Reserved {
            /// Stock left.
            pub left: u32,
        }

        nano::api! {
            /// Keeps stock counts; every item starts with 10.
            service "inventory";
            /// Reserves stock: `POST /inventory/reserve`.
            fn reserve(Reserve) -> Reserved = "inventory.Reserve", POST "/reserve";
        }
    }

    /// `orders`: the entry point.
    pub mod orders {
        use serde::{Deserialize, Serialize};

        /// An order of `quantity` of `item`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Place {
            /// What to order.
            pub item: String,
            /// How many.
            pub quantity: u32,
        }

        /// A placed order.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Placed {
            /// Stock left after the order.
            pub left: u32,
        }

        nano::api! {
            /// Takes orders; reserves their items from inventory.
            service "orders";
            /// Places an order: `POST /orders/`.
            fn place(Place) -> Placed = "orders.Place", POST "/";
        }
    }
}

/// The code `inventory` answers when an item is out of stock.
pub const OUT_OF_STOCK: &str = "C-OUT-OF-STOCK";

/// The stock every item starts with.
pub const INITIAL_STOCK: u32 = 10;

/// The `inventory` service.
#[derive(Debug, Default)]
pub struct Inventory {
    stock: Mutex<HashMap<String, u32>>,
}

impl api::inventory::Handler for Inventory {
    async fn reserve(
        &self,
        _ctx: &Ctx,
        req: api::inventory::Reserve,
    ) -> Result<api::inventory::Reserved, NanoError> {
        if req.item.is_empty() {
            return Err(NanoError::bad_request("an item is needed"));
        }
        let mut stock = self.stock.lock().unwrap_or_else(|p| p.into_inner());
        let left = stock.entry(req.item.clone()).or_insert(INITIAL_STOCK);
        if *left < req.quantity {
            return Err(NanoError::new(
                OUT_OF_STOCK,
                format!("only {left} of {:?} left", req.item),
            ));
        }
        *left -= req.quantity;
        Ok(api::inventory::Reserved { left: *left })
    }
}

/// The `orders` service; depends on inventory.
#[derive(Debug)]
pub struct Orders {
    inventory: Client,
}

impl api::orders::Handler for Orders {
    async fn place(
        &self,
        ctx: &Ctx,
        req: api::orders::Place,
    ) -> Result<api::orders::Placed, NanoError> {
        if req.quantity == 0 {
            return Err(NanoError::bad_request("an order needs a quantity"));
        }
        let reserved = self
            .inventory
            .call(
                ctx,
                api::inventory::Reserve {
                    item: req.item,
                    quantity: req.quantity,
                },
            )
            .await
            .map_err(|err| NanoError::wrap(err, "inventory failure"))?;
        Ok(api::orders::Placed {
            left: reserved.left,
        })
    }
}

/// `inventory`, ready to add to a set.
pub fn inventory() -> NewService {
    api::inventory::service(|_| Ok(Inventory::default()))
}

/// `orders`, built with its inventory client.
pub fn orders() -> NewService {
    api::orders::service(|deps| {
        Ok(Orders {
            inventory: deps.client(api::inventory::NAME)?,
        })
    })
}

/// The shop as a [`System`]: its services, executables and layouts.
pub fn system() -> System {
    System::new("the shop")
        .service(&api::orders::API, orders)
        .service(&api::inventory::API, inventory)
        .server(
            "shop-all",
            "Runs orders and inventory in one process; exposes orders.",
            &["orders", "inventory"],
            &["orders"],
        )
        .server(
            "shop-orders",
            "Runs orders; calls inventory over HTTP (--peer inventory=ADDR).",
            &["orders"],
            &["orders"],
        )
        .server(
            "shop-inventory",
            "Runs inventory.",
            &["inventory"],
            &["inventory"],
        )
        .layout("monolith", &["shop-all"])
        .layout("split", &["shop-orders", "shop-inventory"])
}
