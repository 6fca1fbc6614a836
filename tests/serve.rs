//! `envgate serve` end to end: the real binary on a free loopback port, a
//! real Prometheus scraping it, headless Chromium rendering its pages, and the Kubernetes recipe checked against
//! the API schemas.

#[path = "common/ports.rs"]
#[allow(dead_code, reason = "this binary needs only free_port")]
mod ports;
#[path = "serve/support.rs"]
mod support;

#[path = "serve/browser.rs"]
mod browser;
#[path = "serve/deploy.rs"]
mod deploy;
#[path = "serve/endpoints.rs"]
mod endpoints;
#[path = "serve/formats.rs"]
mod formats;
#[path = "serve/prometheus.rs"]
mod prometheus;
#[path = "serve/security.rs"]
mod security;
