//! Link settings for the `envgate` binary.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ENVGATE_PORTABLE_LINK");
    println!("cargo:rerun-if-env-changed=ENVGATE_NO_PIE");
    if no_pie() {
        // A position-dependent executable: its constants hold their final
        // addresses in the file, so the loader writes none of them and
        // their pages are read from the page cache only when touched (on
        // one 2-core machine, `--version` in 2.3-2.9 ms instead of 4.0-5.2
        // ms: 264 page faults instead of 633). The price is that the
        // executable's own code always sits at the same address (no
        // address-space randomisation for it; libraries, stack and heap
        // keep theirs), so it is a choice made at build time, not the default.
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if packs_relocations() {
        // Relative relocations packed as a bitmap (DT_RELR): the
        // position-independent binary's 60,000 relocations take 23 KB
        // instead of 1.5 MB, which the loader no longer reads at every
        // start. The binary then needs glibc 2.36 or later where it runs.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// `ENVGATE_NO_PIE=1`, on Linux, where the linker driver takes `-no-pie`.
fn no_pie() -> bool {
    std::env::var("ENVGATE_NO_PIE").is_ok_and(|v| !v.is_empty() && v != "0")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
}

/// Only where the result runs on the machine that built it: a Linux glibc
/// build for the host, whose glibc (2.36 or later) reads packed
/// relocations; `ENVGATE_PORTABLE_LINK=1` builds for older systems.
fn packs_relocations() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if !var("ENVGATE_PORTABLE_LINK").is_empty()
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return false;
    }
    host_glibc().is_some_and(|v| v >= (2, 36))
}

/// The host's glibc version, as `ldd --version` states it on its first line
/// ("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36").
fn host_glibc() -> Option<(u32, u32)> {
    let out = Command::new("ldd").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    if !line.to_ascii_lowercase().contains("glibc") && !line.contains("GNU libc") {
        return None;
    }
    let (major, minor) = line.split_whitespace().last()?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
