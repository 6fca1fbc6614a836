//! `envgate serve`: check the flags, open the store, then run the scheduler
//! on its own thread and the HTTP server on a small runtime until SIGTERM
//! (or Ctrl-C): stop accepting, let the run in flight finish, close the
//! store, exit 0.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};

use super::check::selected_envs;
use super::{Context, io};
use crate::audit::Store;
use crate::cli::{Cli, FailOn, LogFormat, ServeArgs};
use crate::config::secrets::{Redactor, redact_url_passwords};
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;
use crate::plan::Choice;
use crate::serve::schedule::{self, Bell, Runner};
use crate::serve::{Config, Counters, Loader, Shared, View, http, probe};

/// `9427` or `IP:PORT`; a port alone listens on 127.0.0.1.
fn listen_addr(s: &str) -> Result<SocketAddr, Problems> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        Problem::new(
            "envgate::cli::listen",
            format!("--listen {s:?}: write IP:PORT (127.0.0.1:9427, [::1]:9427, 0.0.0.0:9427) or a port"),
        )
        .into()
    })
}

pub fn serve(cli: &Cli, ctx: &Context, a: &ServeArgs, err: &mut dyn Write) -> Result<i32, Problems> {
    if a.select.envs.is_empty() && !a.select.all_envs {
        return Err(Problem::new(
            "envgate::cli::env",
            "choose the environments to serve: --env NAME or --all-envs",
        )
        .into());
    }
    if a.interval.is_zero() {
        return Err(Problem::new("envgate::cli::interval", "--interval must be longer than 0s").into());
    }
    let addr = listen_addr(&a.listen)?;
    let token = match a.token.as_deref() {
        Some(t) if t.trim().is_empty() => {
            return Err(Problem::new("envgate::cli::token", "the bearer token is empty").into());
        }
        Some(t) => {
            let d = ring::digest::digest(&ring::digest::SHA256, t.trim().as_bytes());
            let mut h = [0u8; 32];
            h.copy_from_slice(d.as_ref());
            Some(h)
        }
        None => None,
    };
    let project = ctx.project(cli, false, false)?;
    let envs = selected_envs(&project, &a.select)?;
    let mut redactor = Redactor::default();
    // The store's address and the notification channels' secrets are
    // checked now, so a typo fails at start and not at the first run.
    crate::audit::settings::settings(&project, &mut redactor)?;
    let url = crate::audit::settings::store_url(&project, a.store.as_deref(), &mut redactor)?;
    let now = crate::serve::now();
    let open = |url: &str| {
        Store::open(url, &project.root, &project.manifest.project.name, now).map_err(|e| {
            Problems::from(Problem::new(
                "envgate::audit::store",
                redactor.scrub(&format!(
                    "cannot use the history store {}: {e}",
                    redact_url_passwords(url)
                )),
            ))
        })
    };
    if a.read_only
        && let Some(path) = url.strip_prefix("sqlite:")
        && !project.root.join(path.trim_start_matches("//")).exists()
    {
        return Err(Problem::new(
            "envgate::audit::store",
            format!("--read-only: there is no store at {path} yet"),
        )
        .help("run `envgate audit --env ENV` (from cron) first, or serve without --read-only")
        .into());
    }
    let writer = if a.read_only { None } else { Some(open(&url)?) };
    let reader = open(&url)?;
    let config = Config {
        envs,
        interval: a.interval,
        jitter: a.jitter,
        read_only: a.read_only,
        token,
        json_logs: a.log_format == LogFormat::Json,
        probe_rate: a.probe_rate,
        fail_on_warn: a.fail_on == FailOn::Warn,
        project: project.manifest.project.name.clone(),
        sets: a.select.sets.clone(),
        runner: crate::runner::Options {
            concurrency: a.run.concurrency,
            fail_fast: a.run.fail_fast,
            wait: a.run.wait,
            ..Default::default()
        },
    };
    let choice = Choice {
        select: a.filter.selection()?,
        shard: a.filter.shard,
        // A load on every interval would be a load test that never ends:
        // `[probe.load]` runs from `check` and `audit`, never from serve.
        no_load: true,
    };
    let shared = Arc::new(Shared {
        view: RwLock::new(Arc::new(View::empty(&config, now))),
        probes: probe::Prober::new(config.probe_rate),
        config,
        reader: Mutex::new(reader),
        counters: Counters::default(),
        loader: Loader {
            root: project.root.clone(),
            env_vars: project.env_vars.clone(),
        },
        started_at: now,
        reports: Mutex::new(Default::default()),
        stopping: Default::default(),
        refreshed_at: AtomicI64::new(0),
        metrics_cache: Mutex::new([None, None]),
        generation: Default::default(),
    });
    // What the store already knows answers until the first run finishes.
    let _ = shared.refresh(now);
    drop(project);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .map_err(|e| Problems::from(Problem::new("envgate::serve", format!("cannot start the server: {e}"))))?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(addr)).map_err(|e| {
        Problems::from(Problem::new(
            "envgate::serve::listen",
            format!("cannot listen on {addr}: {e}"),
        ))
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    schedule::line(
        err,
        shared.config.json_logs,
        "info",
        &format!(
            "listening on http://{bound}/ ({}; every {}; {})",
            if shared.config.read_only {
                "read-only"
            } else {
                "auditing"
            },
            crate::config::units::format_duration(shared.config.interval),
            if shared.config.token.is_some() {
                "/api and /probe need the bearer token"
            } else {
                "no token"
            }
        ),
        Some(&[("listen", bound.to_string())]),
    );
    err.flush().map_err(io)?;
    let bell = Arc::new(Bell::default());
    let runner = writer.map(|store| Runner {
        store,
        store_url: url.clone(),
        choice,
        host: super::audit::hostname(),
    });
    let scheduler = {
        let (shared, bell) = (shared.clone(), bell.clone());
        std::thread::Builder::new()
            .name("envgate-audit".into())
            .spawn(move || schedule::run(&shared, &bell, runner, &mut std::io::stderr()))
            .map_err(|e| {
                Problems::from(Problem::new(
                    "envgate::serve",
                    format!("cannot start the scheduler: {e}"),
                ))
            })?
    };
    let stop = {
        let (shared, bell) = (shared.clone(), bell.clone());
        async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            shared.stop();
            bell.ring();
        }
    };
    runtime.block_on(http::serve(listener, shared.clone(), stop));
    schedule::line(
        err,
        shared.config.json_logs,
        "info",
        "stopping: finishing the run in flight",
        None,
    );
    // The run in flight finishes and is recorded; the server keeps
    // answering meanwhile (readiness says 503).
    let _ = scheduler.join();
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(shared);
    schedule::line(&mut *err, false, "info", "stopped", None);
    Ok(exit_codes::OK)
}
