//! The audit's Prometheus series, from the store (cheap enough to answer a
//! scrape): each check's success, state, duration, streak, last success,
//! failure class, certificate expiry and uptime; each environment's
//! readiness and last run. Labels are environment and check names, probe
//! kinds, states, classes and windows: never a URL, a DSN or a message.

use std::fmt::Write;

use super::state::Health;
use super::store::{Store, StoreError, Uptime};

/// Text exposition format 0.0.4 for `envs` (every environment when empty).
pub fn render(store: &mut Store, envs: &[String], now: i64) -> Result<String, StoreError> {
    let envs = if envs.is_empty() { store.envs()? } else { envs.to_vec() };
    let mut series: Vec<(&'static str, &'static str, Vec<String>)> = vec![
        (
            "envgate_check_success",
            "1 when the check's last run passed (warnings and flaky passes count), else 0.",
            vec![],
        ),
        (
            "envgate_check_state",
            "1 on the series whose state label is the check's state (ok, failing, flapping).",
            vec![],
        ),
        (
            "envgate_check_duration_seconds",
            "Time the check's last run took.",
            vec![],
        ),
        (
            "envgate_check_consecutive_failures",
            "Consecutive failing runs of the check (0 when it last passed).",
            vec![],
        ),
        (
            "envgate_check_last_success_timestamp_seconds",
            "Unix time of the check's last passing run.",
            vec![],
        ),
        (
            "envgate_check_failure_info",
            "1 with the class of the check's last failure (a fixed list, never free text).",
            vec![],
        ),
        (
            "envgate_tls_not_after_timestamp_seconds",
            "Unix time the certificate the check saw expires.",
            vec![],
        ),
        (
            "envgate_uptime_ratio",
            "Share of the check's runs that passed, over the window.",
            vec![],
        ),
        (
            "envgate_env_up",
            "1 when the environment's last run was ready, else 0.",
            vec![],
        ),
        (
            "envgate_audit_last_run_timestamp_seconds",
            "Unix time the environment's last audit run started.",
            vec![],
        ),
    ];
    let today = now.div_euclid(86_400);
    for env in &envs {
        let d1 = store.uptime_raw(env, now - 86_400)?;
        let d7 = store.uptime_days(env, today - 6)?;
        let d30 = store.uptime_days(env, today - 29)?;
        let find = |list: &[(i64, Uptime)], id: i64| list.iter().find(|(c, _)| *c == id).and_then(|(_, u)| u.ratio());
        for c in store.checks(Some(env))? {
            let base = format!("env=\"{}\",check=\"{}\"", label(env), label(&c.check));
            let kind = label(c.kind.as_deref().unwrap_or(""));
            let status = c.last.status.as_deref().unwrap_or("skipped");
            if status != "skipped" {
                let ok = matches!(status, "pass" | "flaky" | "warn");
                series[0].2.push(format!("{{{base},kind=\"{kind}\"}} {}", u8::from(ok)));
            }
            for h in Health::ALL {
                series[1].2.push(format!(
                    "{{{base},state=\"{}\"}} {}",
                    h.as_str(),
                    u8::from(h == c.state.health)
                ));
            }
            if let Some(ms) = c.last.duration_ms {
                series[2]
                    .2
                    .push(format!("{{{base},kind=\"{kind}\"}} {}", ms as f64 / 1000.0));
            }
            series[3].2.push(format!("{{{base}}} {}", c.state.consecutive_failures));
            if let Some(t) = c.state.last_pass_at {
                series[4].2.push(format!("{{{base}}} {t}"));
            }
            if let Some(class) = &c.last.class {
                series[5].2.push(format!("{{{base},class=\"{}\"}} 1", label(class)));
            }
            if let Some(t) = c.last.not_after {
                series[6].2.push(format!("{{{base}}} {t}"));
            }
            for (w, list) in [("1d", &d1), ("7d", &d7), ("30d", &d30)] {
                if let Some(r) = find(list, c.id) {
                    series[7].2.push(format!("{{{base},window=\"{w}\"}} {r}"));
                }
            }
        }
        if let Some(run) = store.latest_run(env)? {
            let up = !matches!(run.status.as_str(), "fail" | "blocked");
            series[8].2.push(format!("{{env=\"{}\"}} {}", label(env), u8::from(up)));
            series[9]
                .2
                .push(format!("{{env=\"{}\"}} {}", label(env), run.started_at));
        }
    }
    let mut out = String::new();
    for (name, help, lines) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for l in lines {
            let _ = writeln!(out, "{name}{l}");
        }
    }
    Ok(out)
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
