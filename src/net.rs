//! Process-wide network setup shared by every HTTP client.

/// rustls needs one crypto provider per process; ring is pure Rust + asm and
/// needs no C toolchain beyond what every Rust build has.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
