use std::io::Write;

use clap::Parser;

use envgate::cli::Cli;
use envgate::commands::{Context, run};
use envgate::exit_codes;

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
