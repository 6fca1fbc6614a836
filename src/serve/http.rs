//! The HTTP side: axum's router on hyper's HTTP/1 server. Every answer is
//! read from the [`View`](super::View) the last run left (or, for history,
//! one query of the store); only `/probe` runs anything. Bounds: request
//! headers (buffer and count), the time to send them, each answer's time,
//! and the number of connections.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{Shared, badge, expo, probe};
use crate::report::Format;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request's headers (also how long an idle
/// keep-alive connection stays open).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any answer may take (a `/probe` run included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection's whole life: a client that reads its answer too slowly
/// does not hold a connection for ever.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
/// Request head buffer: bounds the request line and headers.
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
/// Resolved incidents `/api/v1/envs/{env}/history` lists, the newest (open
/// ones always): an answer's size does not grow with a flapping check.
pub const API_RESOLVED: usize = 500;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/envs", get(envs))
        .route("/api/v1/envs/{env}/status", get(status))
        .route("/api/v1/envs/{env}/history", get(history))
        .route("/badge/{file}", get(badge))
        .route("/probe", get(probe_now))
        .fallback(not_found)
        .layer(middleware::from_fn(harden))
        .with_state(shared)
}

/// Serve until `shutdown` completes: stop accepting; connections in flight
/// go on until the process exits.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: impl Future<Output = ()>) {
    let app = router(shared);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => return,
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                // Out of file descriptors, or the like: breathe, then go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .max_headers(MAX_HEADERS)
                .keep_alive(true);
            let conn = b.serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(permit);
        });
    }
}

/// Every answer: a deadline, no caching, no sniffing.
async fn harden(req: Request, next: Next) -> Response {
    let mut resp = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the answer took too long\n"),
    };
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body.into()).into_response()
}

fn json(code: StatusCode, body: impl Into<String>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}

fn error(code: StatusCode, msg: &str) -> Response {
    json(code, format!("{}\n", serde_json::json!({ "error": msg })))
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// The bearer token, when one is configured, compared in constant time
/// (both sides hashed first, so their lengths are not compared either).
fn guard(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let Some(want) = &shared.config.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let ok = given.is_some_and(|t| {
        let d = ring::digest::digest(&ring::digest::SHA256, t.as_bytes());
        bool::from(d.as_ref().ct_eq(want.as_slice()))
    });
    if ok {
        return Ok(());
    }
    shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "a bearer token is required: Authorization: Bearer TOKEN",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"envgate\""),
    );
    Err(r)
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.stopping.load(Ordering::SeqCst) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n");
    }
    let view = s.view();
    let now = super::now();
    let limit = 2 * s.config.interval.as_secs().max(1) as i64;
    match view.latest_finished {
        None => text(StatusCode::SERVICE_UNAVAILABLE, "no completed run yet\n"),
        Some(t) if now - t > limit => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stale: the last run finished {}s ago, more than twice the interval ({limit}s)\n",
                now - t
            ),
        ),
        Some(t) => text(
            StatusCode::OK,
            format!("ready: the last run finished {}s ago\n", now - t),
        ),
    }
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let om = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(expo::wants_openmetrics);
    let body = expo::cached(&s, om);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, if om { expo::OPENMETRICS } else { expo::TEXT })],
        body,
    )
        .into_response()
}

async fn page(State(s): State<Arc<Shared>>) -> Response {
    let view = s.view();
    let body = if view.page.is_empty() {
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
<title>envgate status</title></head><body><p>starting: no run recorded yet</p></body></html>\n"
            .into()
    } else {
        view.page.clone()
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

async fn envs(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &headers) {
        return r;
    }
    let view = s.view();
    let list: Vec<serde_json::Value> = view
        .envs
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "ready": e.ready,
                "readiness": super::word(e),
                "status": e.status,
                "last_run": e.last_run.map(crate::audit::event::rfc3339),
                "checks": e.checks,
                "not_ok": e.not_ok,
            })
        })
        .collect();
    let v = serde_json::json!({
        "version": 1,
        "generated_at": crate::audit::event::rfc3339(view.at),
        "environments": list,
    });
    json(
        StatusCode::OK,
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
    )
}

/// A media type's format, for the reports an environment's status is in.
fn format_of(media: &str) -> Option<Format> {
    Some(match media {
        "application/json" | "*/*" | "application/*" => Format::Json,
        "text/markdown" | "text/x-markdown" => Format::Markdown,
        "text/html" | "application/xhtml+xml" => Format::Html,
        "application/xml" | "text/xml" | "application/junit+xml" => Format::Junit,
        "application/sarif+json" | "application/sarif" => Format::Sarif,
        "text/x-tap" | "text/tap" | "text/plain" => Format::Tap,
        _ => return None,
    })
}

/// The format the client prefers among those it accepts (highest `q`
/// first, then in the order written); JSON when it says nothing.
pub fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Format::Json);
    };
    let mut choices: Vec<(f32, usize, Format)> = Vec::new();
    for (i, part) in accept.split(',').enumerate() {
        let mut it = part.split(';');
        let media = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        if let Some(f) = format_of(&media) {
            choices.push((q, i, f));
        }
    }
    choices.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    choices.first().map(|c| c.2)
}

fn content_type(f: Format) -> &'static str {
    match f {
        Format::Markdown => "text/markdown; charset=utf-8",
        Format::Html => "text/html; charset=utf-8",
        Format::Junit => "application/xml; charset=utf-8",
        Format::Sarif => "application/sarif+json",
        Format::Tap => "text/plain; charset=utf-8",
        _ => "application/json",
    }
}

fn query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .take(16)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn status(
    State(s): State<Arc<Shared>>,
    Path(env): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = guard(&s, &headers) {
        return r;
    }
    let view = s.view();
    let Some(e) = view.env(&env) else {
        return error(StatusCode::NOT_FOUND, "this server does not audit that environment");
    };
    let q = query(raw.as_deref());
    let format = match param(&q, "format") {
        Some(name) => Format::parse(name).filter(|f| {
            matches!(
                f,
                Format::Json | Format::Markdown | Format::Html | Format::Junit | Format::Sarif | Format::Tap
            )
        }),
        None => negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())),
    };
    let Some(format) = format else {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "formats: application/json, text/markdown, text/html, application/xml (JUnit), \
             application/sarif+json, text/plain (TAP)",
        );
    };
    let code = if e.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let Some(stored) = &e.report_json else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no run recorded yet");
    };
    let body = if format == Format::Json {
        stored.clone()
    } else if let Some(report) = &e.report {
        Bytes::from(format.reporter().render(report, probe::style()))
    } else {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "only application/json: the last run was recorded by another runner, and the store keeps its JSON report",
        );
    };
    let mut r = (code, [(header::CONTENT_TYPE, content_type(format))], body).into_response();
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    if format == Format::Html {
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:",
            ),
        );
    }
    r
}

async fn history(
    State(s): State<Arc<Shared>>,
    Path(env): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = guard(&s, &headers) {
        return r;
    }
    if !s.config.envs.contains(&env) {
        return error(StatusCode::NOT_FOUND, "this server does not audit that environment");
    }
    let q = query(raw.as_deref());
    let since = match param(&q, "since") {
        None => Duration::from_secs(7 * 86_400),
        Some(t) => match crate::config::units::parse_duration(t) {
            Some(d) => d,
            None => return error(StatusCode::BAD_REQUEST, "since: a duration such as 7d, 12h or 30m"),
        },
    };
    let check = param(&q, "check").map(String::from);
    if let Some(c) = &check
        && globset::Glob::new(c).is_err()
    {
        return error(StatusCode::BAD_REQUEST, "check: a check id or glob");
    }
    let shared = s.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let now = super::now();
        let mut store = shared.reader.lock().unwrap_or_else(|p| p.into_inner());
        crate::audit::history::load(
            &mut store,
            &crate::audit::history::Query {
                envs: vec![env],
                check: check.as_deref(),
                since: now - since.as_secs() as i64,
                now,
                resolved: Some(API_RESOLVED),
            },
        )
    })
    .await;
    match answer {
        Ok(Ok(h)) => json(
            StatusCode::OK,
            format!("{}\n", serde_json::to_string_pretty(&h).unwrap_or_default()),
        ),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "cannot read the history store"),
    }
}

async fn badge(State(s): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    let view = s.view();
    let (env, svg) = if let Some(e) = file.strip_suffix(".svg") {
        (e, true)
    } else if let Some(e) = file.strip_suffix(".json") {
        (e, false)
    } else {
        return text(
            StatusCode::NOT_FOUND,
            "badges: /badge/ENV.svg, or /badge/ENV.json for shields.io\n",
        );
    };
    let Some(e) = view.env(env) else {
        return text(StatusCode::NOT_FOUND, "this server does not audit that environment\n");
    };
    let (ct, body) = if svg {
        ("image/svg+xml", badge::svg(e))
    } else {
        ("application/json", badge::shields(e))
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache, max-age=0"),
        ],
        body,
    )
        .into_response()
}

async fn probe_now(State(s): State<Arc<Shared>>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &headers) {
        return r;
    }
    let q = query(raw.as_deref());
    let (Some(env), Some(check)) = (param(&q, "env"), param(&q, "check")) else {
        return error(StatusCode::BAD_REQUEST, "ask /probe?env=ENV&check=probe/NAME");
    };
    let view = s.view();
    let Some(e) = view.env(env) else {
        s.counters.probe_unknown.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::NOT_FOUND, "this server does not audit that environment");
    };
    // Only a probe the environment's checks define: never a target from the request.
    if !e.probes.iter().any(|p| p == check) {
        s.counters.probe_unknown.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::NOT_FOUND,
            "no such probe in this environment's last run: /probe runs only probes the checks files define",
        );
    }
    let (env, check) = (env.to_string(), check.to_string());
    let shared = s.clone();
    let ticket = s.probes.ticket(&env, &check, |tx| {
        let (env, check) = (env.clone(), check.clone());
        std::thread::spawn(move || {
            let answer = match shared.loader.load() {
                Ok(project) => probe::run_one(&project, &env, &check, &shared.config.sets, &shared.config.runner),
                Err(p) => probe::Answer {
                    body: Err(format!("the configuration does not assemble: {p}")),
                    ok: false,
                },
            };
            shared.probes.done(&env, &check);
            let _ = tx.send(Some(Arc::new(answer)));
        });
    });
    let mut rx = match ticket {
        probe::Ticket::Limited(secs) => {
            s.counters.probe_limited.fetch_add(1, Ordering::Relaxed);
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many probe runs: try again later");
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        probe::Ticket::Started(rx) => {
            s.counters.probe_runs.fetch_add(1, Ordering::Relaxed);
            rx
        }
        probe::Ticket::Shared(rx) => {
            s.counters.probe_shared.fetch_add(1, Ordering::Relaxed);
            rx
        }
    };
    let answer = match rx.wait_for(Option::is_some).await {
        Ok(a) => a.clone(),
        Err(_) => None,
    };
    match answer {
        Some(a) => match &a.body {
            Ok(body) => {
                let code = if a.ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let mut r = json(code, body.clone());
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, why),
        },
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the probe run ended without an answer",
        ),
    }
}
