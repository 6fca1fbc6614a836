//! The status page, the badge and the HTML status format rendered by
//! headless Chromium, screenshots taken.

use std::path::Path;
use std::process::Command;

use crate::support::Fixture;

fn chromium(profile: &Path, extra: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .output()
        .expect("chromium: run `sudo bash scripts/setup/serve.sh`");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        extra.iter().any(|a| a.starts_with("--screenshot")) || !stdout.is_empty(),
        "chromium {extra:?} printed nothing: {stderr}"
    );
    stdout
}

fn png(path: &Path, min: u64) {
    let bytes = std::fs::read(path).unwrap_or_default();
    assert!(bytes.starts_with(b"\x89PNG"), "{} is not a PNG", path.display());
    assert!(bytes.len() as u64 > min, "{} is nearly empty", path.display());
}

#[test]
fn chromium_renders_the_status_page_badge_and_html_status_with_states_in_words() {
    let f = Fixture::new("");
    let s = f.serve(&["--all-envs", "--interval", "1s"]);
    s.until(20, "the first run", |s| s.get("/readyz").code == 200);
    f.down("prod-db");
    s.until(20, "the incident", |s| s.get("/").body.contains("open incidents"));
    let profile = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", s.port);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));

    // The page has no script at all (its CSP forbids one): what Chromium
    // renders is what a browser without JavaScript shows.
    let dom = chromium(profile.path(), &["--dump-dom", &format!("{base}/")]);
    assert!(
        dom.contains(r#"<tr class="check" data-check="probe/orders-db" data-state="failing">"#),
        "{dom}"
    );
    assert!(
        dom.contains("✗ failing") && dom.contains("✓ ok"),
        "states are written out"
    );
    assert!(dom.contains("✗ not ready") && dom.contains("✓ ready"));
    assert!(dom.contains("where it was set: <code>environments/prod.toml:"), "{dom}");
    assert!(!dom.contains("<script"));
    let page = shots.join("serve-status-page.png");
    chromium(
        profile.path(),
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", page.display()),
            &format!("{base}/"),
        ],
    );
    png(&page, 10_000);

    let badge = shots.join("serve-badge.png");
    let dom = chromium(profile.path(), &["--dump-dom", &format!("{base}/badge/prod.svg")]);
    assert!(dom.contains("not ready"), "{dom}");
    chromium(
        profile.path(),
        &[
            "--window-size=240,40",
            &format!("--screenshot={}", badge.display()),
            &format!("{base}/badge/prod.svg"),
        ],
    );
    png(&badge, 300);

    // The HTML status format: the report's own page, its script running.
    let url = format!("{base}/api/v1/envs/prod/status?format=html");
    let dom = chromium(profile.path(), &["--dump-dom", &url]);
    assert!(dom.contains("probe/orders-db"), "{dom}");
    let status = shots.join("serve-status-html.png");
    chromium(
        profile.path(),
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", status.display()),
            &url,
        ],
    );
    png(&status, 10_000);
}
