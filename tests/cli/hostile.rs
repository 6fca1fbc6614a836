//! Hostile files and inputs: bounded memory, no crash, no secret in any
//! output, no damage to the machine when writing reports, and quiet exits
//! when the reader of stdout goes away.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

/// A run whose messages are not wrapped, for checks on whole sentences.
pub(crate) fn wide(dir: &Path, args: &[&str]) -> Run {
    envgate_with(dir, args, &[("COLUMNS", "1000")])
}

/// Every output of a run, for "this never appears" checks.
pub(crate) fn all(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

pub(crate) fn with_source(dir: &Path, kind: &str, path: &str) {
    write(
        dir,
        "envgate.toml",
        &format!(
            "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"extra\"\nkind = \"{kind}\"\npath = \"{path}\"\n"
        ),
    );
}

// ---- memory a stranger controls -----------------------------------------

/// A server on loopback that answers every request with `head` and then
/// `chunk` over and over until the client hangs up.
fn endless_server(head: &'static str) -> (u16, std::thread::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req);
        s.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'A'; 64 * 1024];
        let mut sent = 0u64;
        while s.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
        }
        sent
    });
    (port, t)
}

#[test]
fn an_http_source_that_never_stops_sending_is_cut_off_with_exit_2() {
    for head in [
        // no length: the body runs until the server closes, which it never does
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[\"",
        // a length of 10 GB, announced: refused before reading
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n[\"",
    ] {
        let (port, server) = endless_server(head);
        let dir = project(&[("environments/prod.toml", "")]);
        write(
            dir.path(),
            "envgate.toml",
            &format!(
                "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"cfg\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/config\"\ntimeout = \"60s\"\n"
            ),
        );
        let start = Instant::now();
        let r = wide(dir.path(), &["check", "--env", "prod"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("larger than 64 MiB"), "{}", r.stderr);
        assert!(start.elapsed() < Duration::from_secs(50), "cut off, not timed out");
        let sent = server.join().unwrap();
        // It stopped reading at the bound (what was in flight aside).
        assert!(sent < 256 << 20, "the server sent {sent} bytes before envgate hung up");
    }
}

#[test]
fn a_source_that_is_dev_zero_or_a_fifo_is_refused_with_exit_2() {
    let dir = project(&[("environments/prod.toml", "")]);
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    mkfifo(&dir.path().join("pipe.yaml"));
    for (file, what) in [
        ("zero.yaml", "it is a character device, not a regular file"),
        ("pipe.yaml", "it is a FIFO (named pipe), not a regular file"),
        ("environments", "it is a directory, not a regular file"),
    ] {
        with_source(dir.path(), "file", file);
        let start = Instant::now();
        let r = wide(dir.path(), &["validate"]);
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("cannot read {file}: {what}")),
            "{}",
            r.stderr
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn a_file_reference_to_a_device_is_a_finding_not_a_hang() {
    let dir = project(&[(
        "environments/prod.toml",
        "[database]\nurl = \"${file:/dev/zero}\"\npool_size = 5\n",
    )]);
    let r = wide(dir.path(), &["validate", "--env", "prod"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("cannot read /dev/zero: it is a character device"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_25_mb_line_beside_an_error_is_left_out_of_the_snippet() {
    let big = format!("# {}\n", "A".repeat(25_000_000));
    let dir = project(&[(
        "environments/prod.toml",
        &format!("{big}[http]\ntimeout = \"5s\"\nport = \"x\"\n"),
    )]);
    let r = wide(dir.path(), &["validate", "--env", "prod"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.len() < 8_000, "{} bytes of output", r.stdout.len());
    assert!(r.stdout.contains(" 4 │ port = \"x\""), "{}", r.stdout);
}

#[test]
fn a_long_line_holding_the_error_is_cut_to_a_window_around_it() {
    let line = format!("port = [{}\"x\"]\n", "1, ".repeat(300_000));
    let dir = project(&[("environments/prod.toml", &format!("[http]\ntimeout = \"5s\"\n{line}"))]);
    let r = wide(dir.path(), &["validate", "--env", "prod"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let snippet: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with(" 3 │")).collect();
    assert_eq!(snippet.len(), 1, "{}", r.stdout);
    assert!(snippet[0].chars().count() < 200, "{}", snippet[0]);
    assert!(r.stdout.len() < 16_000, "{} bytes of output", r.stdout.len());
}

// ---- deep input: exit 2 with a reason, never a stack overflow -----------

#[test]
fn a_set_key_of_5000_parts_is_exit_2_not_a_crash() {
    let dir = project(&[("environments/prod.toml", "")]);
    let key = vec!["a"; 5000].join(".");
    let r = wide(dir.path(), &["render", "--env", "prod", "--set", &format!("{key}=1")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("the key has 5000 parts; a key has at most 64"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_env_var_of_5000_parts_is_exit_2_not_a_crash() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"process-env\"\nkind = \"env\"\nprefix = \"SVC__\"\n",
    );
    let var = format!("SVC__{}", vec!["A"; 5000].join("__"));
    let r = envgate_with(dir.path(), &["validate"], &[(var.as_str(), "1"), ("COLUMNS", "1000")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("has 5000 `__`-separated parts"), "{}", r.stderr);
}

#[test]
fn a_chain_of_800_interpolations_resolves_on_every_thread() {
    // Keys listed so that each refers to the next: resolving the first
    // walks the whole chain.
    let mut chain = String::from("[chain]\n");
    for i in 0..800 {
        chain.push_str(&format!("k{i} = \"${{chain.k{}}}\"\n", i + 1));
    }
    chain.push_str("k800 = \"end\"\n");
    let dir = project(&[("environments/staging.toml", ""), ("environments/prod.toml", "")]);
    let base = std::fs::read_to_string(dir.path().join("environments/base.toml")).unwrap();
    write(dir.path(), "environments/base.toml", &format!("{base}{chain}"));
    let r = wide(dir.path(), &["render", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["chain"]["k0"], "end");
    // both environments at once, each on its own evaluation thread
    let r = wide(dir.path(), &["validate", "--format", "json"]);
    assert_ne!(r.code, 134, "{}", r.stderr);
    assert_eq!(results(&r).iter().filter(|x| x["id"] == "config").count(), 2);
}

#[test]
fn a_cycle_of_800_interpolations_is_named_by_its_ends() {
    let mut chain = String::from("[chain]\n");
    for i in 0..800 {
        chain.push_str(&format!("k{i} = \"${{chain.k{}}}\"\n", (i + 1) % 800));
    }
    let dir = project(&[("environments/prod.toml", &chain)]);
    let r = wide(dir.path(), &["render", "--env", "prod"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("interpolation cycle: chain.k0 → chain.k1")
            && r.stderr.contains("(789 more)")
            && r.stderr.contains("chain.k799 → chain.k0"),
        "{}",
        r.stderr
    );
}

// ---- writing reports ----------------------------------------------------

fn kind_of(path: &str) -> std::fs::FileType {
    std::fs::metadata(path).unwrap().file_type()
}

#[test]
fn a_report_to_dev_null_is_written_through_and_dev_null_stays_a_device() {
    use std::os::unix::fs::FileTypeExt;
    let dir = project(&[("environments/prod.toml", "")]);
    let r = wide(
        dir.path(),
        &["validate", "--report", "junit=/dev/null", "--report", "json=/dev/null"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(kind_of("/dev/null").is_char_device());
}

#[test]
fn a_report_to_dev_full_is_exit_2_and_dev_full_stays_a_device() {
    use std::os::unix::fs::FileTypeExt;
    let dir = project(&[("environments/prod.toml", "")]);
    let r = wide(dir.path(), &["validate", "--report", "json=/dev/full"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("cannot write report /dev/full: no space left on device"),
        "{}",
        r.stderr
    );
    assert!(kind_of("/dev/full").is_char_device());
}

#[test]
fn a_report_to_a_fifo_is_written_through_to_its_reader() {
    use std::os::unix::fs::FileTypeExt;
    let dir = project(&[("environments/prod.toml", "")]);
    let fifo = dir.path().join("report.pipe");
    mkfifo(&fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_path = fifo.clone();
    std::thread::spawn(move || tx.send(std::fs::read_to_string(&reader_path).unwrap()));
    let r = wide(dir.path(), &["validate", "--report", "json=report.pipe"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
        // envgate never opened the FIFO: release the reader, then fail.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        rx.recv().unwrap()
    });
    validate_report(&got);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_report_over_a_planted_symlink_replaces_the_link_and_leaves_its_target_alone() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(dir.path(), "victim.txt", "precious\n");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("victim.txt"), dir.path().join("out/report.json")).unwrap();
    let r = wide(dir.path(), &["validate", "--report", "json=out/report.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("victim.txt")).unwrap(),
        "precious\n"
    );
    let meta = std::fs::symlink_metadata(dir.path().join("out/report.json")).unwrap();
    assert!(meta.is_file(), "the link is replaced by the report");
    validate_report(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap());
}

#[test]
fn a_report_replaces_its_file_keeping_its_mode_and_leaves_no_temp_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project(&[("environments/prod.toml", "")]);
    write(dir.path(), "out/report.json", "old");
    let path = dir.path().join("out/report.json");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    for _ in 0..2 {
        let r = wide(dir.path(), &["validate", "--report", "json=out/report.json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    validate_report(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["report.json"]);
    // a directory is refused, not replaced
    std::fs::create_dir(dir.path().join("out/dir")).unwrap();
    let r = wide(dir.path(), &["validate", "--report", "json=out/dir"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("it is a directory"), "{}", r.stderr);
}

// ---- render formats that cannot hold a value ------------------------------

#[test]
fn render_toml_of_a_null_is_exit_2_naming_the_key() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(dir.path(), "console.yaml", "database:\n  replica: null\n");
    with_file_source(dir.path(), "console.yaml");
    let r = wide(dir.path(), &["render", "--env", "prod"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr
            .contains("cannot render `prod` as TOML: `database.replica` is null, which TOML cannot represent"),
        "{}",
        r.stderr
    );
    let r = wide(dir.path(), &["render", "--env", "prod", "--format", "yaml"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("replica: null"), "{}", r.stdout);
}

#[test]
fn render_env_refuses_a_value_with_a_line_break_instead_of_injecting_a_variable() {
    let dir = project(&[("environments/prod.toml", "[http]\nbanner = \"hello\\nINJECTED=1\"\n")]);
    let r = wide(dir.path(), &["render", "--env", "prod", "--format", "env"]);
    assert_eq!(r.code, 2);
    assert!(!r.stdout.contains("INJECTED"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("`http.banner` has a line break, which an env file would read as the start of another variable"),
        "{}",
        r.stderr
    );
}

// ---- files that are not what they seem ------------------------------------

#[test]
fn an_environment_file_that_links_to_itself_is_named_as_a_loop() {
    let dir = project(&[("environments/prod.toml", "")]);
    std::os::unix::fs::symlink("loop.toml", dir.path().join("environments/loop.toml")).unwrap();
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\nenvironments = [\"prod\", \"loop\"]\n",
    );
    let r = wide(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(
            "environment `loop`: cannot read environments/loop.toml: it is a symbolic link that leads back to itself"
        ),
        "{}",
        r.stderr
    );
}

// ---- a closed pipe is not an error -------------------------------------------

#[test]
fn every_command_exits_0_quietly_when_its_reader_goes_away() {
    let dir = project(&[
        ("environments/staging.toml", "[database]\npool_size = 7\n"),
        ("environments/prod.toml", ""),
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = format!("tcp://{}", listener.local_addr().unwrap());
    let init_dir = TempDir::new().unwrap();
    let init_target = init_dir.path().join("new");
    let init_target = init_target.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["validate"],
        vec!["validate", "--format", "json"],
        vec!["check", "--env", "prod", "--offline"],
        vec!["render", "--env", "prod"],
        vec!["render", "--env", "prod", "--show-origin", "--format", "yaml"],
        vec!["explain", "--env", "prod", "http.port"],
        vec!["diff", "staging", "prod"],
        vec!["list"],
        vec!["init", init_target],
        vec!["probe", &tcp],
        vec!["--help"],
        vec!["--version"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        // Nobody reads: the first write finds the pipe closed.
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_envgate"))
            .current_dir(dir.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
