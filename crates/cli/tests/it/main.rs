//! The cli crate's integration tests, one binary: each module is one
//! area (linking every area into one binary is much faster to build).

mod common;

mod client;
mod crash;
mod credentials;
mod form_memory;
mod hash;
mod health;
mod nodes;
mod permissions;
mod serve;
mod soak;
mod tokens;
mod tus_clients;
