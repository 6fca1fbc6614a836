//! Running a command for a secret (`${secret:cmd:...}`, an AWS profile's
//! `credential_process`): no shell, a timeout, bounded output. Its standard
//! output is the secret, so nothing here ever puts it in an error: a
//! failure names the command (its program and arguments as written) and
//! what went wrong, with at most a bounded excerpt of its standard error.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most a secret command may print on standard output.
pub const MAX_OUTPUT: usize = 64 << 10;
/// The most of its standard error kept for a failure message.
const MAX_STDERR: usize = 4 << 10;

/// The words of a command line, split as a shell would split them without
/// running one: blanks separate words, `'...'` and `"..."` quote, `\`
/// escapes the next character outside single quotes. No variables, globs,
/// pipes or redirections: those characters are just characters.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("a `'` is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("a `\"` is not closed".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("a `\"` is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("names no command".into());
    }
    Ok(words)
}

/// Run `argv` (no shell, standard input closed) for at most `timeout`;
/// its standard output, at most [`MAX_OUTPUT`] bytes, as text. Killed when
/// it takes longer or prints more.
pub fn run(argv: &[String], timeout: Duration) -> Result<String, String> {
    run_in(argv, timeout, None)
}

/// [`run`] in the directory `cwd` (the project's root for
/// `${secret:cmd:...}`, so relative paths mean what they do for `file:`).
pub fn run_in(argv: &[String], timeout: Duration, cwd: Option<&std::path::Path>) -> Result<String, String> {
    let shown = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Err("the command is empty".into());
    };
    let mut cmd = Command::new(program);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {}", crate::diagnostic::plain(&e.to_string())))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    // Readers on their own threads, each bounded: a command that prints
    // without end is stopped at the bound, not buffered.
    let over = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = std::thread::spawn({
        let over = over.clone();
        move || {
            let mut buf = Vec::new();
            let n = (&mut out).take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
            if buf.len() > MAX_OUTPUT {
                over.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            n.map(|_| buf)
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut err).take(MAX_STDERR as u64).read_to_end(&mut buf);
        // Drain the rest so the command never blocks on a full pipe.
        let _ = std::io::copy(&mut err, &mut std::io::sink());
        buf
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "`{shown}` did not finish within {}",
                    super::units::format_duration(timeout)
                ));
            }
            // A command that printed more than the bound is not waited for.
            Ok(None) if over.load(std::sync::atomic::Ordering::Relaxed) => {
                let _ = child.kill();
                break child.wait().map_err(|e| format!("waiting for `{shown}`: {e}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(format!("waiting for `{shown}`: {e}")),
        }
    };
    let status = status?;
    if over.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(format!(
            "`{shown}` printed more than {}, more than a secret",
            super::units::format_bytes(MAX_OUTPUT as u64)
        ));
    }
    let out = reader
        .join()
        .map_err(|_| format!("reading `{shown}`'s output failed"))?
        .map_err(|e| format!("reading `{shown}`'s output: {e}"))?;
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let code = status
            .code()
            .map_or_else(|| "was killed by a signal".to_string(), |c| format!("exited with {c}"));
        let said = String::from_utf8_lossy(&err);
        let said = said.trim();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                said.chars()
                    .take(300)
                    .filter(|c| !c.is_control() || *c == ' ')
                    .collect::<String>()
            )
        };
        return Err(format!("`{shown}` {code}{said}"));
    }
    String::from_utf8(out).map_err(|_| format!("`{shown}` printed bytes that are not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell_without_one() {
        assert_eq!(
            split(r#"vault kv get -field=password "secret/my app" 'a b'\ c"#).unwrap(),
            ["vault", "kv", "get", "-field=password", "secret/my app", "a b c"]
        );
        assert_eq!(split("echo $HOME | cat").unwrap(), ["echo", "$HOME", "|", "cat"]);
        assert!(split("  ").is_err());
        assert!(split("echo 'open").is_err());
    }

    #[test]
    fn a_command_prints_its_secret_and_failures_name_the_command() {
        let t = Duration::from_secs(5);
        assert_eq!(run(&split("printf s3cret").unwrap(), t).unwrap(), "s3cret");
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "s3cret").unwrap();
        let line = format!("sh -c 'cat {}; echo nope >&2; exit 3'", f.path().display());
        let e = run(&split(&line).unwrap(), t).unwrap_err();
        assert!(e.contains("exited with 3: nope") && !e.contains("s3cret"), "{e}");
        let e = run(&split("/nonexistent/vault read x").unwrap(), t).unwrap_err();
        assert!(e.starts_with("cannot run `/nonexistent/vault read x`"), "{e}");
        let start = Instant::now();
        let e = run(&split("sleep 5").unwrap(), Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("did not finish within 200ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
        let e = run(&split("head -c 100000 /dev/zero").unwrap(), t).unwrap_err();
        assert!(e.contains("printed more than 64KiB"), "{e}");
    }
}
