//! Reading the files a project points at (configuration, sources, check
//! files, `${file:...}`, a targets file): regular files only, and at most
//! [`MAX_FILE_BYTES`] of them. `/dev/zero` as a source would otherwise fill
//! memory, and a FIFO would block the run forever.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// The most envgate reads from one file or one `http` source: 64 MiB, far
/// above any configuration and far below what would hurt the machine.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadFailure {
    /// Nothing at that path (a dangling symbolic link included).
    Missing,
    /// Something that is not a regular file; says what it is.
    NotRegular(&'static str),
    /// A symbolic link that leads back to itself.
    Loop,
    TooLarge,
    Io(std::io::Error),
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::Missing => f.write_str("no such file"),
            ReadFailure::NotRegular(what) => {
                write!(f, "it is {what}, not a regular file: envgate reads only regular files")
            }
            ReadFailure::Loop => f.write_str("it is a symbolic link that leads back to itself"),
            ReadFailure::TooLarge => write!(
                f,
                "it is larger than {} MiB, the most envgate reads from one file",
                MAX_FILE_BYTES >> 20
            ),
            ReadFailure::Io(e) => f.write_str(&io_reason(e)),
        }
    }
}

/// `permission denied`, not `Permission denied (os error 13)`.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_lowercase()
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn failure(e: std::io::Error) -> ReadFailure {
    if e.kind() == std::io::ErrorKind::NotFound {
        ReadFailure::Missing
    } else if e.raw_os_error() == Some(libc::ELOOP) {
        ReadFailure::Loop
    } else {
        ReadFailure::Io(e)
    }
}

/// What is at `path`, when it is not a readable regular file; `None` when it is one.
pub fn check_regular(path: &Path) -> Option<ReadFailure> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) => Some(ReadFailure::NotRegular(kind_of(&m))),
        Err(e) => Some(failure(e)),
    }
}

/// The bytes of a regular file of at most [`MAX_FILE_BYTES`].
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadFailure> {
    use std::os::unix::fs::OpenOptionsExt;
    // Look before opening: opening some devices has effects of its own.
    if let Some(f) = check_regular(path) {
        return Err(f);
    }
    // Non-blocking, so that a FIFO swapped in since the look cannot block the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(failure)?;
    let meta = file.metadata().map_err(ReadFailure::Io)?;
    if !meta.is_file() {
        return Err(ReadFailure::NotRegular(kind_of(&meta)));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadFailure::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read: never read past the bound.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadFailure::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadFailure::TooLarge);
    }
    Ok(bytes)
}

/// A regular file's text, for values read whole (`${file:path}`).
pub fn read_text(path: &Path) -> Result<String, ReadFailure> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|_| {
        ReadFailure::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not valid UTF-8",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_directories_and_loops_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_bytes(Path::new("/dev/zero")),
            Err(ReadFailure::NotRegular("a character device"))
        ));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_bytes(&fifo),
            Err(ReadFailure::NotRegular("a FIFO (named pipe)"))
        ));
        assert!(matches!(
            read_bytes(dir.path()),
            Err(ReadFailure::NotRegular("a directory"))
        ));
        let link = dir.path().join("loop.toml");
        std::os::unix::fs::symlink(&link, &link).unwrap();
        assert!(matches!(read_bytes(&link), Err(ReadFailure::Loop)));
        assert!(matches!(
            read_bytes(&dir.path().join("none")),
            Err(ReadFailure::Missing)
        ));
    }

    #[test]
    fn a_file_over_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        // Sparse: no disk space is used.
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(read_bytes(&big), Err(ReadFailure::TooLarge)));
        f.set_len(3).unwrap();
        assert_eq!(read_bytes(&big).unwrap(), vec![0, 0, 0]);
    }
}
