//! What the server writes, snapshotted: the badge (SVG and the shields.io
//! endpoint JSON) in each readiness, the status page of a fixed history,
//! and which report format an `Accept` header picks.

use envgate::audit::history::{Cell, CheckHistory, EnvHistory, History, IncidentView, UptimeView};
use envgate::report::Format;
use envgate::serve::{EnvView, badge, http::negotiate, page};

fn env(name: &str, status: Option<&str>, ready: bool) -> EnvView {
    EnvView {
        name: name.into(),
        status: status.map(String::from),
        ready,
        last_run: status.map(|_| 1_795_876_200),
        checks: 2,
        not_ok: usize::from(!ready && status.is_some()),
        report_json: None,
        report: None,
        probes: vec!["probe/orders-db".into()],
    }
}

fn check(id: &str, state: &str, cells: &[&str]) -> CheckHistory {
    CheckHistory {
        id: id.into(),
        kind: Some("postgres".into()),
        state: state.into(),
        since: "2026-11-28T14:00:00Z".into(),
        streak: if state == "ok" { 3 } else { -2 },
        last_status: cells.last().map(|c| c.to_string()),
        last_message: Some(if state == "ok" {
            "SELECT 1 in 2ms".into()
        } else {
            "refused: connection refused by 10.20.1.5:5432".into()
        }),
        last_pass: Some("2026-11-28T13:55:00Z".into()),
        uptime: UptimeView {
            d1: Some(0.5),
            d7: Some(0.9),
            d30: None,
        },
        recent: cells
            .iter()
            .enumerate()
            .map(|(i, c)| Cell {
                at: format!("2026-11-28T14:{:02}:00Z", i * 5),
                status: c.to_string(),
            })
            .collect(),
        open_incident: (state != "ok").then(|| "prod:probe/orders-db:1795875600".into()),
        tls_not_after: None,
    }
}

#[test]
fn the_badge_says_the_readiness_in_words_in_each_state() {
    for (name, e) in [
        ("ready", env("prod", Some("pass"), true)),
        ("not_ready", env("prod", Some("fail"), false)),
        ("no_run", env("prod", None, false)),
    ] {
        insta::assert_snapshot!(format!("badge_svg_{name}"), badge::svg(&e));
        insta::assert_snapshot!(format!("badge_shields_{name}"), badge::shields(&e));
    }
}

#[test]
fn the_status_page_shows_states_time_in_state_uptime_bars_and_open_incidents() {
    let h = History {
        version: 1,
        generated_at: "2026-11-28T14:30:00Z".into(),
        since: "2026-11-21T14:30:00Z".into(),
        environments: vec![EnvHistory {
            name: "prod".into(),
            last_run: None,
            checks: vec![
                check("probe/orders-db", "failing", &["pass", "pass", "fail", "fail"]),
                check("probe/cache", "ok", &["pass", "warn", "pass", "pass"]),
            ],
            incidents: vec![IncidentView {
                id: "prod:probe/orders-db:1795875600".into(),
                check: "probe/orders-db".into(),
                opened_at: "2026-11-28T14:20:00Z".into(),
                resolved_at: None,
                duration_s: 600,
                open: true,
                flapping: false,
                status: "fail".into(),
                message: "refused: connection refused by 10.20.1.5:5432 <script>".into(),
                where_set: Some("environments/prod.toml:8:7".into()),
                config_changed: vec!["database.url".into()],
                blocks: vec!["probe/orders-api".into()],
            }],
            undelivered: Vec::new(),
        }],
    };
    let envs = [env("prod", Some("fail"), false), env("staging", None, false)];
    let html = page::render(
        "orders-api",
        &h,
        &envs,
        std::time::Duration::from_secs(60),
        1_795_876_200,
    );
    assert!(!html.contains("<script>"), "messages are escaped");
    insta::assert_snapshot!("status_page", html);
}

#[test]
fn accept_picks_the_report_format_by_quality_then_order() {
    let cases = [
        (None, Some(Format::Json)),
        (Some(""), Some(Format::Json)),
        (Some("*/*"), Some(Format::Json)),
        (Some("text/markdown"), Some(Format::Markdown)),
        (
            Some("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
            Some(Format::Html),
        ),
        (Some("application/json;q=0.2, application/xml"), Some(Format::Junit)),
        (Some("application/sarif+json"), Some(Format::Sarif)),
        (Some("text/plain"), Some(Format::Tap)),
        (Some("TEXT/MARKDOWN; charset=utf-8"), Some(Format::Markdown)),
        (Some("text/markdown;q=0, application/json"), Some(Format::Json)),
        (Some("image/png"), None),
        (Some("text/markdown;q=0"), None),
    ];
    for (accept, want) in cases {
        assert_eq!(negotiate(accept), want, "Accept: {accept:?}");
    }
}
