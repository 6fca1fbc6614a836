use std::io::Write;

use clap::Parser;

use envgate::cli::{Cli, Command};
use envgate::commands::{Context, run};
use envgate::exit_codes;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options, by their index in its `mi_option_e` (v3, the
/// version libmimalloc-sys builds); tests read each back by name, so a
/// version with another order fails them.
const MI_OPTION_ARENA_EAGER_COMMIT: i32 = 4;
const MI_OPTION_PURGE_DELAY: i32 = 15;
const MI_OPTION_ALLOW_THP: i32 = 43;

/// Resident memory is a promise to cron hosts and sidecars: commit arena
/// memory as it is used and leave transparent huge pages alone, so a
/// thousand probes in flight cost what they touch.
///
/// It runs from the executable's `.init_array`, before the runtime's first
/// allocation: mimalloc reserves its first arena then, and an arena that
/// asked for huge pages has the kernel zero a 2 MiB page to hold its first
/// few bytes (3.4 MiB more resident and about half a millisecond on every
/// run, `envgate --version` included).
#[used]
#[unsafe(link_section = ".init_array")]
static FRUGAL_ALLOCATOR: extern "C" fn() = frugal_allocator;

extern "C" fn frugal_allocator() {
    for option in [MI_OPTION_ARENA_EAGER_COMMIT, MI_OPTION_ALLOW_THP] {
        // SAFETY: mi_option_set only stores the value (before mimalloc's own
        // initialisation too); later allocations read it.
        unsafe { libmimalloc_sys::mi_option_set(option, 0) };
    }
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit_codes::CANNOT_EVALUATE
            } else {
                exit_codes::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if matches!(cli.command, Command::Serve(_)) {
        // A server runs for days: memory freed after a burst of requests
        // goes back to the system at once rather than after mimalloc's
        // one-second delay, which a thread that then sleeps never reaches.
        // SAFETY: mi_option_set only stores the value; later frees read it.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    let ctx = Context::from_process();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let code = match run(cli, &ctx, &mut out, &mut err) {
        Ok(code) => code,
        // `envgate render | head` closes the pipe early: that is success (as in ripgrep).
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_codes::OK,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            exit_codes::CANNOT_EVALUATE
        }
    };
    let _ = out.flush();
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    /// The purge delay's index names that option: its default is 1000 ms
    /// (`tests/probe_cli.rs` reads the two options set before `main` back
    /// by name, from mimalloc's own listing).
    #[test]
    fn the_purge_delay_index_names_the_purge_delay() {
        // SAFETY: mi_option_get only reads an option.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        assert_eq!(get(super::MI_OPTION_PURGE_DELAY), 1000, "purge_delay");
    }
}
