//! `file`: a regular file exists and is readable, with the expected mode,
//! owner, size and content.
//!
//! Bounds: `regex` reads at most the first 4 MiB of the file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use regex::Regex;

use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "file",
    doc: "a regular file exists and is readable, with the expected mode, owner and content",
    target: "a file path",
    schemes: &[],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Permission bits, e.g. "0640".
    mode: Option<String>,
    /// Owning user, a name or a numeric uid.
    owner: Option<String>,
    /// The file is not empty.
    non_empty: Option<bool>,
    /// The content (first 4 MiB) matches this regular expression.
    regex: Option<String>,
}

struct File {
    path: String,
    mode: Option<u32>,
    owner: Option<String>,
    non_empty: bool,
    regex: Option<Regex>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    if target.trim().is_empty() {
        return Err(ParamError::new("target", "a file probe needs a path"));
    }
    let d: Params = spec.params()?;
    let mode = d
        .mode
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|v| *v <= 0o7777)
        })
        .map(|m| {
            m.ok_or_else(|| {
                ParamError::new(
                    "mode",
                    format!(
                        "`{}` is not an octal mode such as \"0640\"",
                        d.mode.as_deref().unwrap_or_default()
                    ),
                )
            })
        })
        .transpose()?;
    let regex = d
        .regex
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|e| ParamError::new("regex", format!("invalid regular expression: {e}")))?;
    Ok(Box::new(File {
        path: target.to_string(),
        mode,
        owner: d.owner.clone(),
        non_empty: d.non_empty.unwrap_or(false),
        regex,
    }))
}

impl Probe for File {
    fn hosts(&self) -> Vec<Endpoint> {
        Vec::new()
    }

    fn run<'a>(&'a self, _: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let (path, mode, owner, non_empty, regex) = (
                self.path.clone(),
                self.mode,
                self.owner.clone(),
                self.non_empty,
                self.regex.clone(),
            );
            tokio::task::spawn_blocking(move || check(&path, mode, owner.as_deref(), non_empty, regex.as_ref()))
                .await
                .unwrap_or_else(|e| Outcome::fail(Class::Io, format!("file check panicked: {e}")))
        })
    }
}

fn check(path: &str, mode: Option<u32>, owner: Option<&str>, non_empty: bool, regex: Option<&Regex>) -> Outcome {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return fs_error(path, &e),
    };
    if !meta.is_file() {
        return Outcome::fail(
            Class::NotFound,
            format!("expected a regular file at {path}, found a directory or device"),
        );
    }
    let got_mode = meta.permissions().mode() & 0o7777;
    if let Some(m) = mode
        && got_mode != m
    {
        return Outcome::fail(
            Class::Permission,
            format!("expected mode {m:04o} on {path}, got {got_mode:04o}"),
        );
    }
    if let Some(o) = owner {
        let want = match o.parse::<u32>() {
            Ok(uid) => Some(uid),
            Err(_) => uid_of(o),
        };
        match want {
            None => {
                return Outcome::fail(
                    Class::Permission,
                    format!("expected owner `{o}` of {path}, but no such user exists"),
                );
            }
            Some(uid) if uid != meta.uid() => {
                return Outcome::fail(
                    Class::Permission,
                    format!("expected owner `{o}` (uid {uid}) of {path}, got uid {}", meta.uid()),
                );
            }
            Some(_) => {}
        }
    }
    if non_empty && meta.len() == 0 {
        return Outcome::fail(Class::Body, format!("expected {path} to be non-empty, it is empty"));
    }
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fs_error(path, &e),
    };
    if let Some(r) = regex {
        use std::io::Read;
        let mut buf = Vec::new();
        if let Err(e) = (&mut f).take(4 << 20).read_to_end(&mut buf) {
            return fs_error(path, &e);
        }
        if !r.is_match(&String::from_utf8_lossy(&buf)) {
            return Outcome::fail(
                Class::Body,
                format!("expected the content of {path} to match /{r}/, it does not"),
            );
        }
    }
    Outcome::pass(format!(
        "{path}: {} bytes, mode {got_mode:04o}, uid {}",
        meta.len(),
        meta.uid()
    ))
}

/// A file-system error as a class: not_found, permission or io.
pub fn fs_error(path: &str, e: &std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::NotFound => Outcome::fail(Class::NotFound, format!("{path} does not exist")),
        std::io::ErrorKind::PermissionDenied => {
            Outcome::fail(Class::Permission, format!("no permission to read {path}"))
        }
        _ => Outcome::fail(
            Class::Io,
            format!("{path}: {}", crate::diagnostic::plain(&e.to_string())),
        ),
    }
}

fn uid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `buf` outlives it and `out` is checked before use.
    let rc = unsafe { libc::getpwnam_r(c.as_ptr(), pwd.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: getpwnam_r succeeded and `out` points at `pwd`.
    Some(unsafe { (*out).pw_uid })
}
