//! End-to-end tests: the functions' handlers, fed API Gateway events, against a real moto server
//! and the Xero emulator. One test binary; helpers in `helpers.rs`.

mod attachments;
mod browser;
mod chromium;
mod cleanup;
mod connect;
mod contacts;
mod contacts_back;
mod credit_notes;
mod customers;
mod governor;
mod helpers;
mod import;
mod inputs;
mod items;
mod page_api;
mod page_browser;
mod payments;
mod push;
mod refunds;
mod resilience;
mod retry;
mod safety_net;
mod settings;
mod sweep;
mod webhook;
mod wrong_data;
mod xero_webhooks;
