//! File descriptors are envgate's own resource, not the target's. Before
//! a probe run the soft limit is raised to the hard limit (as servers do),
//! and the runner sizes its concurrency to what the limit leaves after a
//! reserve, so two thousand probes under `ulimit -n 256` wait for a
//! descriptor instead of failing with "too many open files". Should the
//! limit still be hit, the message says it is envgate's, not the target's.
//! Programs an `exec` probe starts get the original soft limit back: some
//! (those that use select(2)) break above 1024.

use std::sync::OnceLock;

/// Descriptors kept for envgate itself: standard streams, the runtime's,
/// check files, reports, the resolver.
const RESERVE: u64 = 32;

/// Descriptors one probe attempt may hold at once: a socket per address
/// of the host (IPv4 and IPv6), or an `exec` plugin's pipes while it is
/// being spawned.
pub const PER_PROBE: u64 = 6;

/// The soft limit before and after raising it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub original: u64,
    pub now: u64,
}

static LIMITS: OnceLock<Option<Limits>> = OnceLock::new();

/// Raise the soft limit on open files to the hard limit, once per
/// process; `None` where the limit cannot be read.
pub fn raise() -> Option<Limits> {
    *LIMITS.get_or_init(|| {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
            return None;
        }
        let original = rl.rlim_cur;
        if rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            // SAFETY: setrlimit reads one rlimit we own; a refusal leaves
            // the limit as it was, which is read back below.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
            // SAFETY: as above.
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
                rl.rlim_cur = original;
            }
        }
        Some(Limits {
            original,
            now: rl.rlim_cur,
        })
    })
}

/// How many probes may run at once within the descriptor limit: at most
/// `wanted`, at least one.
pub fn concurrency(wanted: usize) -> usize {
    match raise() {
        Some(l) => {
            let room = l.now.saturating_sub(RESERVE) / PER_PROBE;
            wanted.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
        }
        None => wanted.max(1),
    }
}

/// Put the soft limit back to what it was before [`raise`], in a child
/// between fork and exec.
pub fn restore_for_child() -> std::io::Result<()> {
    if let Some(Some(l)) = LIMITS.get()
        && l.original < l.now
    {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit are async-signal-safe system
        // calls on structs we own, as pre_exec requires.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            rl.rlim_cur = l.original;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The error is envgate running out of descriptors (EMFILE, ENFILE).
pub fn exhausted(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// What to say when [`exhausted`]: envgate's limit, not the target.
pub fn exhausted_message() -> String {
    let limit = raise().map_or("its limit".to_string(), |l| format!("its limit of {}", l.now));
    format!(
        "envgate ran out of file descriptors ({limit}), so this says nothing about the target: lower --concurrency or raise `ulimit -n`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_fits_the_descriptor_limit() {
        let l = raise().expect("a readable limit");
        assert!(l.now >= l.original);
        let n = concurrency(usize::MAX) as u64;
        assert!(
            n * PER_PROBE + RESERVE <= l.now.max(RESERVE + PER_PROBE),
            "{n} for {l:?}"
        );
        assert_eq!(concurrency(3), 3.min(n as usize));
        assert_eq!(concurrency(0), 1);
    }
}
