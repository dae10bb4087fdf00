//! Licentia: an open-source license central.
//!
//! With the default `server` feature this is the whole license central. With
//! `default-features = false, features = ["client"]` it is only what a vendor builds into its
//! software: the domain types, the container protocol and the client runtime
//! ([`client::Container`], [`client::online`]), with none of the server's dependencies.
pub mod domain;
pub mod error;
pub mod protocol;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod bench;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod connectors;
#[cfg(feature = "server")]
pub mod saml;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod store;
