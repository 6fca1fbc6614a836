//! `disk`: a directory exists, optionally is writable (a temp file is created
//! and removed), and has enough free space, in bytes or percent.
//!
//! Bounds: nothing is read; the writable check writes 7 bytes and removes them.

use std::path::PathBuf;

use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};
use crate::config::units::{format_bytes, parse_bytes};

pub static KIND: Kind = Kind {
    name: "disk",
    doc: "a directory exists, is writable and has free space",
    target: "a directory path",
    schemes: &[],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Create and remove a temporary file in the directory.
    writable: Option<bool>,
    /// Free space required: "512MiB", "2GB" or "10%".
    min_free: Option<String>,
}

#[derive(Clone, Copy)]
enum MinFree {
    Bytes(u64),
    Percent(f64),
}

struct Disk {
    path: PathBuf,
    writable: bool,
    min_free: Option<MinFree>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    if target.trim().is_empty() {
        return Err(ParamError::new("target", "a disk probe needs a directory path"));
    }
    let d: Params = spec.params()?;
    let min_free = match d.min_free.as_deref().map(str::trim) {
        None => None,
        Some(s) => Some(match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => MinFree::Percent(v),
                _ => {
                    return Err(ParamError::new(
                        "min_free",
                        format!("`{s}` is not a percentage between 0% and 100%"),
                    ));
                }
            },
            None => MinFree::Bytes(parse_bytes(s).ok_or_else(|| {
                ParamError::new(
                    "min_free",
                    format!("`{s}` is not a size such as \"512MiB\" or a percentage such as \"10%\""),
                )
            })?),
        }),
    };
    Ok(Box::new(Disk {
        path: PathBuf::from(target),
        writable: d.writable.unwrap_or(false),
        min_free,
    }))
}

impl Probe for Disk {
    fn hosts(&self) -> Vec<Endpoint> {
        Vec::new()
    }

    fn run<'a>(&'a self, _: &'a Ctx) -> BoxFuture<'a, Outcome> {
        let (path, writable, min_free) = (self.path.clone(), self.writable, self.min_free);
        // A hung network mount must not hang a runtime thread: the runner's
        // timeout abandons this blocking task.
        Box::pin(async move {
            tokio::task::spawn_blocking(move || check(&path, writable, min_free))
                .await
                .unwrap_or_else(|e| Outcome::fail(Class::Io, format!("disk check panicked: {e}")))
        })
    }
}

fn check(path: &std::path::Path, writable: bool, min_free: Option<MinFree>) -> Outcome {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return super::file::fs_error(&shown.to_string(), &e),
    };
    if !meta.is_dir() {
        return Outcome::fail(
            Class::NotFound,
            format!("expected a directory at {shown}, found a file"),
        );
    }
    if writable {
        let probe = path.join(format!(".envgate-probe-{}", std::process::id()));
        if let Err(e) = std::fs::write(&probe, b"envgate") {
            return match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    Outcome::fail(Class::Permission, format!("{shown} is not writable"))
                }
                _ => Outcome::fail(
                    Class::Io,
                    format!("cannot write in {shown}: {}", crate::diagnostic::plain(&e.to_string())),
                ),
            };
        }
        let _ = std::fs::remove_file(&probe);
    }
    let (free, total) = match statvfs(path) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::fail(
                Class::Io,
                format!(
                    "cannot read free space of {shown}: {}",
                    crate::diagnostic::plain(&e.to_string())
                ),
            );
        }
    };
    let pct = if total == 0 {
        0.0
    } else {
        free as f64 * 100.0 / total as f64
    };
    let seen = format!("{} free of {} ({pct:.1}%)", human(free), human(total));
    match min_free {
        Some(MinFree::Bytes(min)) if free < min => Outcome::fail(
            Class::Capacity,
            format!("expected at least {} free on {shown}, {seen}", human(min)),
        ),
        Some(MinFree::Percent(min)) if pct < min => Outcome::fail(
            Class::Capacity,
            format!("expected at least {min}% free on {shown}, {seen}"),
        ),
        _ => Outcome::pass(format!("{shown}: {seen}{}", if writable { ", writable" } else { "" })),
    }
}

fn human(b: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if b >= size {
            return format!("{:.1}{unit}", b as f64 / size as f64);
        }
    }
    format_bytes(b)
}

/// Bytes available to an unprivileged user, and the file system's size.
#[expect(clippy::unnecessary_cast, reason = "statvfs field types differ between targets")]
fn statvfs(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `s` is written by statvfs before we read it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `s`.
    let s = unsafe { s.assume_init() };
    let frsize = s.f_frsize as u64;
    Ok((s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize))
}
