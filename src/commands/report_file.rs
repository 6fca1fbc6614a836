//! Writing a `--report FORMAT=PATH` without harming the machine. envgate
//! often runs as root in shared directories, so:
//!
//! - a regular file (or a path where nothing is yet) is replaced atomically:
//!   the report is written to a temp file created exclusively, under an
//!   unpredictable name, in the same directory, then renamed over the path;
//!   the temp file is removed if anything fails;
//! - a character device or a FIFO (`/dev/stdout`, `/dev/null`, a pipe read by
//!   another program) is written straight through, never replaced;
//! - a symbolic link is never written through to a regular file (a link
//!   planted in `/tmp` cannot aim the report at another file): the link
//!   itself is replaced. A link to a device or FIFO (`/dev/stdout`) is
//!   written through, as the shell would;
//! - a directory, block device or socket is refused.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use crate::config::read::io_reason;
use crate::diagnostic::{Problem, Problems};

pub fn write_report(path: &Path, text: &str) -> Result<(), Problems> {
    let fail = |what: String| -> Problems {
        Problem::new("envgate::io", format!("cannot write report {}: {what}", path.display())).into()
    };
    let target = std::fs::metadata(path).ok().map(|m| m.file_type());
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match target {
        Some(t) if t.is_char_device() || t.is_fifo() => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| fail(io_reason(&e)))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.flush())
                .map_err(|e| fail(io_reason(&e)))
        }
        Some(t) if t.is_dir() => Err(fail("it is a directory".into())),
        Some(t) if t.is_block_device() => Err(fail(
            "it is a block device; envgate never writes reports to disks".into(),
        )),
        Some(t) if t.is_socket() => Err(fail("it is a socket".into())),
        _ => replace_atomically(path, text, !is_link).map_err(fail),
    }
}

/// Write `text` to an exclusive temp file beside `path` and rename it over
/// `path`; the temp file is removed if any step fails.
fn replace_atomically(path: &Path, text: &str, keep_mode: bool) -> Result<(), String> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| io_reason(&e))?;
            d
        }
        None => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A new report gets the usual 0666 less the umask; a replaced one keeps its mode.
    let mode = keep_mode
        .then(|| std::fs::metadata(path).ok())
        .flatten()
        .map_or(0o666, |m| m.permissions().mode() & 0o7777);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| io_reason(&e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_reason(&e))?;
    tmp.persist(path).map_err(|e| io_reason(&e.error))?;
    Ok(())
}
