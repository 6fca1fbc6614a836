//! A project to audit, in a temp dir: `prod` with file probes whose targets
//! (marker files) the test creates and removes to make checks pass and fail,
//! a fixed clock the test moves, and the audit run in-process.

use std::path::{Path, PathBuf};

use envgate::audit::store::Store;
use envgate::audit::{AuditOptions, CycleOutcome, FixedClock, cycle};
use envgate::check::CheckOptions;
use envgate::config::project::Project;
use envgate::config::secrets::Redactor;
use indexmap::IndexMap;
use tempfile::TempDir;

/// A secret that must never be stored, sent or printed.
pub const CANARY: &str = "canary-7f3a9c2e-secret";
/// Start of the test clock: 2026-11-28T14:30:00Z.
pub const T0: i64 = 1_795_876_200;

pub struct Fixture {
    pub dir: TempDir,
    pub vars: IndexMap<String, String>,
    pub clock: FixedClock,
}

pub const ONE_PROBE: &str = r#"
[[probe]]
name = "orders-db"
kind = "file"
target = "${database.socket}"
"#;

impl Fixture {
    /// `audit`: the `[audit]` table and channels, appended to the manifest.
    pub fn new(audit: &str, checks: &str) -> Fixture {
        let dir = TempDir::new().unwrap();
        let m = dir.path().join("markers");
        std::fs::create_dir_all(&m).unwrap();
        write(
            dir.path(),
            "envgate.toml",
            &format!("[project]\nname = \"orders-api\"\nenvironments = [\"prod\"]\n\n{audit}\n"),
        );
        write(
            dir.path(),
            "environments/base.toml",
            "[service]\nname = \"orders-api\"\n",
        );
        let prod = format!(
            "[database]\npassword = \"${{secret:env:DB_PASSWORD}}\"\nsocket = \"{m}/db\"\n\n[dns]\nmarker = \"{m}/dns\"\n\n[api]\nmarker = \"{m}/api\"\n",
            m = m.display()
        );
        write(dir.path(), "environments/prod.toml", &prod);
        write(dir.path(), "checks/probes.toml", checks);
        let mut vars = IndexMap::new();
        vars.insert("DB_PASSWORD".to_string(), CANARY.to_string());
        Fixture {
            dir,
            vars,
            clock: FixedClock::at(T0),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn marker(&self, name: &str) -> PathBuf {
        self.dir.path().join("markers").join(name)
    }

    /// Make the probes of `name` pass.
    pub fn up(&self, name: &str) {
        std::fs::write(self.marker(name), "up").unwrap();
    }

    /// Make the probes of `name` fail.
    pub fn down(&self, name: &str) {
        let _ = std::fs::remove_file(self.marker(name));
    }

    pub fn project(&self) -> Project {
        Project::load(self.dir.path(), self.vars.clone()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn store(&self) -> Store {
        let p = self.project();
        let mut r = Redactor::default();
        let url = envgate::audit::settings::store_url(&p, None, &mut r).unwrap();
        Store::open(&url, self.dir.path(), "orders-api", self.clock.now_secs()).unwrap()
    }

    /// One audit run at the clock's time, as runner `runner`, on `store`.
    pub fn run_on(&self, store: &mut Store, runner: &str) -> CycleOutcome {
        let project = self.project();
        let mut redactor = Redactor::default();
        let settings = envgate::audit::settings::settings(&project, &mut redactor).unwrap_or_else(|e| panic!("{e}"));
        let opts = AuditOptions {
            check: CheckOptions {
                envs: vec!["prod".into()],
                sets: Vec::new(),
                choice: Default::default(),
                runner: Default::default(),
            },
            fail_on_warn: false,
            trigger: "test".into(),
            runner: runner.into(),
            host: "test-host".into(),
        };
        cycle(&project, store, &settings, &opts, &self.clock, &redactor).unwrap_or_else(|e| panic!("{e}"))
    }

    /// One audit run at the clock's time.
    pub fn run(&self) -> CycleOutcome {
        let mut store = self.store();
        self.run_on(&mut store, "runner-1")
    }

    /// Run, then move the clock on five minutes (a cron interval).
    pub fn tick(&self) -> CycleOutcome {
        let o = self.run();
        self.clock.advance(300);
        o
    }

    pub fn write(&self, rel: &str, text: &str) {
        write(self.dir.path(), rel, text);
    }
}

pub trait Now {
    fn now_secs(&self) -> i64;
}

impl Now for FixedClock {
    fn now_secs(&self) -> i64 {
        envgate::audit::Clock::now(self)
    }
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A `[[audit.notify]]` webhook table posting to `url`, through a secret.
pub fn webhook(name: &str, var: &str) -> String {
    format!("[[audit.notify]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"${{secret:env:{var}}}\"\n")
}

/// Every byte of the store's files (database and WAL), for secret checks.
pub fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["history.db", "history.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(".envgate").join(name)) {
            all.extend(b);
        }
    }
    all
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}
