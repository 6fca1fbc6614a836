//! Process-wide network setup shared by every client, and how envgate reads
//! an address out of any text a user writes ([`address`]). The lowest layer:
//! the isolation rule and the probes both read addresses this one way.

pub mod address;

/// rustls needs one crypto provider per process; ring is pure Rust + asm and
/// needs no C toolchain beyond what every Rust build has.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
