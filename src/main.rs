use std::io::Write;

use clap::Parser;

use envgate::cli::Cli;
use envgate::commands::{Context, run};
use envgate::exit_codes;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options, by their index in its `mi_option_e` (v2).
const MI_OPTION_ARENA_EAGER_COMMIT: i32 = 4;
const MI_OPTION_ALLOW_THP: i32 = 39;

/// Resident memory is a promise to cron hosts and sidecars: commit arena
/// memory as it is used and leave transparent huge pages alone, so a
/// thousand probes in flight cost what they touch.
fn frugal_allocator() {
    for option in [MI_OPTION_ARENA_EAGER_COMMIT, MI_OPTION_ALLOW_THP] {
        // SAFETY: mi_option_set only stores the value; later allocations read it.
        unsafe { libmimalloc_sys::mi_option_set(option, 0) };
    }
    // The arena reserved before `main` already asked for huge pages: turn
    // them off for the process (a 2 MiB page zeroed to hold a few keys costs
    // both time and resident memory).
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

fn main() {
    frugal_allocator();
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
