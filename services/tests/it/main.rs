//! The article's workflow step 1: business logic tested in-process, no servers.

mod test1;
mod test2;
