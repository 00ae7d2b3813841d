//! The server crate's integration tests, one binary: each module is one
//! area (linking every area into one binary is much faster to build).

mod common;

mod access;
mod append;
mod bad_input;
mod concat;
mod downloads;
mod exposure;
mod fairness;
mod flow;
mod form_batches;
mod form_limits;
mod page;
mod proofs;
mod props;
mod quotas;
mod races;
mod replay;
mod slow_clients;
mod sweep;
mod tus;
mod tus_extensions;
