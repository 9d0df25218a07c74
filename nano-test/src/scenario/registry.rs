//! [`Registry`]: turns the wire names and JSON bodies of a scenario back into typed values.

use std::collections::BTreeMap;
use std::fmt;

use nano::{AnyRequest, AnyResponse, Api, NanoError, Request, RequestType};

use crate::{CallOutcome, Json};

/// The request types a replay may meet, by wire name.
///
/// ```
/// use nano_test::scenario::Registry;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Greet { pub user: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Greeting { pub text: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Lookup { pub id: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct User { pub name: String }
/// # mod greeter { use super::*; nano::api! { service "greeter"; fn greet(Greet) -> Greeting = "greeter.Greet", POST "/"; } }
/// # mod users { use super::*; nano::api! { service "users"; fn lookup(Lookup) -> User = "users.Lookup", POST "/"; } }
/// # fn main() -> Result<(), nano::NanoError> {
/// let registry = Registry::new().with::<Lookup>();
/// let body = nano_test::Json::from(serde_json::json!({"id": "u1"}));
/// let request = registry.decode_request("users.Lookup", &body)?;
/// assert_eq!(request.downcast_ref::<Lookup>().unwrap().id, "u1");
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, &'static RequestType>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `R`.
    #[must_use]
    pub fn with<R: Request>(mut self) -> Self {
        self.add(RequestType::of::<R>());
        self
    }

    /// Adds a request type.
    pub fn add(&mut self, request_type: &'static RequestType) {
        self.types.insert(request_type.name(), request_type);
    }

    /// Adds every request type of `types`.
    #[must_use]
    pub fn with_all(mut self, types: impl IntoIterator<Item = &'static RequestType>) -> Self {
        types.into_iter().for_each(|t| self.add(t));
        self
    }

    /// Every request type the declared `apis` list.
    ///
    /// ```
    /// use nano_test::scenario::Registry;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Greet { pub user: String }
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Greeting { pub text: String }
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Lookup { pub id: String }
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct User { pub name: String }
    /// # mod greeter { use super::*; nano::api! { service "greeter"; fn greet(Greet) -> Greeting = "greeter.Greet", POST "/"; } }
    /// # mod users { use super::*; nano::api! { service "users"; fn lookup(Lookup) -> User = "users.Lookup", POST "/"; } }
    /// # fn main() -> Result<(), nano::NanoError> {
    /// let registry = Registry::from_apis(&[&greeter::API, &users::API])?;
    /// assert!(registry.get("users.Lookup").is_ok());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when two different request types share a wire name, which would make
    /// recordings ambiguous.
    pub fn from_apis<'a>(
        apis: impl IntoIterator<Item = &'a &'static Api>,
    ) -> Result<Self, NanoError> {
        let mut registry = Registry::new();
        for api in apis {
            for op in api.operations() {
                let ty = op.request_type();
                if let Some(known) = registry
                    .types
                    .get(ty.name())
                    .filter(|known| ***known != *ty)
                {
                    return Err(NanoError::new(
                        crate::codes::BAD_SPEC,
                        format!(
                            "wire name {:?} is declared for {} (service {:?}) and for {}",
                            ty.name(),
                            ty.rust_name(),
                            api.name(),
                            known.rust_name()
                        ),
                    ));
                }
                registry.add(ty);
            }
        }
        Ok(registry)
    }

    /// The request type with wire name `name`.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` naming the known types when `name` is not registered.
    pub fn get(&self, name: &str) -> Result<&'static RequestType, NanoError> {
        self.types.get(name).copied().ok_or_else(|| {
            NanoError::new(
                crate::codes::BAD_SPEC,
                format!(
                    "request type {name} is not registered for replay (registered: {})",
                    self.types.keys().copied().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// Decodes a recorded request body, exactly as a transport would decode it.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` for an unregistered type; `C-BAD-REQUEST` when the body does not decode
    /// (which is what a recorded bad request is meant to produce).
    pub fn decode_request(&self, name: &str, body: &Json) -> Result<AnyRequest, NanoError> {
        self.get(name)?.decode_request(body.as_str().as_bytes())
    }

    /// The recorded outcome of a call of request type `name`, as the callee would produce it.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` for an unregistered type or an unfinished outcome (which has no value);
    /// `S-BAD-RESPONSE` when a recorded response does not decode.
    pub fn decode_outcome(
        &self,
        name: &str,
        outcome: &CallOutcome,
    ) -> Result<Result<AnyResponse, NanoError>, NanoError> {
        match outcome {
            CallOutcome::Response(body) => Ok(Ok(self
                .get(name)?
                .decode_response(body.as_str().as_bytes())?)),
            CallOutcome::Error { code, message } => {
                Ok(Err(NanoError::new(code.clone(), message.clone())))
            }
            CallOutcome::Unfinished => Err(NanoError::new(
                crate::codes::BAD_SPEC,
                "an unfinished call has no outcome to replay",
            )),
        }
    }

    /// The registered wire names.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}
