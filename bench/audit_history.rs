//! Generate an audit history as cron would leave it: RUNS runs of CHECKS
//! checks of `prod`, five minutes apart, recorded through the same code as
//! `envgate audit` (retention on), into DIR/.envgate/history.db. Some checks
//! fail now and then (blips, outages, a flapping one) so states, incidents
//! and roll-ups are realistic.
//!
//! usage: cargo run --release --example audit_history -- DIR RUNS CHECKS

use std::collections::HashMap;
use std::time::Instant;

use envgate::audit::cycle::{RunMeta, record_report};
use envgate::audit::{Settings, Store};
use envgate::findings::Category;
use envgate::outcome::{CheckResult, EnvReport, Report, Status};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, runs, checks) = match args.as_slice() {
        [_, d, r, c] => (
            std::path::PathBuf::from(d),
            r.parse::<i64>().unwrap(),
            c.parse::<usize>().unwrap(),
        ),
        _ => {
            eprintln!("usage: audit_history DIR RUNS CHECKS");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(dir.join("environments")).unwrap();
    std::fs::write(
        dir.join("envgate.toml"),
        "[project]\nname = \"bench\"\nenvironments = [\"prod\"]\n\n[audit]\nretain = \"30d\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("environments/prod.toml"), "").unwrap();
    // The last run is now, so `envgate history` sees a current history.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now - runs * 300;
    let mut store = Store::open("sqlite:.envgate/history.db", &dir, "bench", start).unwrap();
    let settings = Settings::default();
    let snapshot: envgate::audit::digest::Snapshot = (0..40)
        .map(|i| (format!("service.key{i}"), format!("{i:024x}")))
        .collect();
    let snapshots: HashMap<String, _> = [("prod".to_string(), snapshot)].into();
    let began = Instant::now();
    for run in 0..runs {
        let at = start + run * 300;
        let results = (0..checks)
            .map(|c| {
                let failing = match c {
                    0 => run % 10 < 5,                       // flapping
                    1 => (run / 2000) % 2 == 1,              // long outages
                    2 => run % 97 == 0,                      // blips
                    _ => (run + c as i64 * 131) % 5000 < 12, // rare, short outages
                };
                let mut r = CheckResult::pass(
                    Category::Probe,
                    &format!("probe/service-{c:03}"),
                    &format!("service-{c:03}"),
                    format!("connected to 10.20.{}.{}:5432 in {}ms", c / 250, c % 250, 2 + run % 7),
                );
                r.kind = Some("postgres".into());
                r.duration_ms = Some(2 + (run % 7) as u64);
                r.attempts = Some(1);
                r.target = Some(format!("postgres://app:***@db-{c:03}.prod.example.com:5432/orders"));
                if failing {
                    r.status = Status::Fail;
                    r.message = format!("refused: connection refused by 10.20.{}.{}:5432", c / 250, c % 250);
                }
                r
            })
            .collect();
        let report = Report::new(vec![EnvReport::new("prod".into(), results)], 40);
        let meta = RunMeta {
            project: "bench",
            started_at: at,
            finished_at: at,
            host: "bench",
            trigger: "cron",
            fail_on_warn: false,
            unfiltered: true,
        };
        record_report(&mut store, &settings, &meta, &report, &snapshots).unwrap();
        if (run + 1) % 10_000 == 0 {
            eprintln!("{} runs, {:.0?}", run + 1, began.elapsed());
        }
    }
    drop(store);
    println!("{runs} runs of {checks} checks recorded in {:.1?}", began.elapsed());
}
