//! `postgres`: connect (TLS unless sslmode=disable: libpq's default `prefer`
//! falls back to plain text when the server declines), authenticate, open
//! the database and answer `SELECT 1`; optionally check tables exist and a
//! query's first value. Never writes.
//!
//! `query` is one statement that reads (checked when the probe is built),
//! sent with the extended protocol (one Parse: the server refuses a second
//! statement) inside a read-only transaction that is rolled back, and at
//! most one row is fetched.
//!
//! Bounds: a connection reads at most 1 MiB in all, TLS included, and a
//! message header that announces more is refused before its body is read
//! (the driver would reserve what it announces). Goodbye: Terminate and
//! close, after the verdict and under its own short bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{Host, SslMode, SslNegotiation};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, NoTls, TlsConnect};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::bounded::{Limited, Meter, TooMuch};
use super::net::{combine, io_outcome, join_all};
use super::param::Dur;
use super::pg_wire::{AsText, Frames, Guarded, Phase};
use super::service::{self, Ended, Target, TlsOpts};
use super::sql::{Dialect, single_read};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};
use crate::config::suggest::did_you_mean;

/// What one connection may read in all, and the longest message.
const LIMIT: u64 = 1 << 20;

pub static KIND: Kind = Kind {
    name: "postgres",
    doc: "PostgreSQL accepts the credentials, opens the database and answers SELECT 1",
    target: "a postgres:// or postgresql:// URL, or a key=value DSN (host=... dbname=...)",
    schemes: &["postgres", "postgresql"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Tables (schema.table or table) that must exist.
    #[serde(default)]
    tables: Vec<String>,
    /// A read-only query whose first value `expect` checks (runs in a read-only transaction).
    query: Option<String>,
    /// The value the query's first column of the first row must equal, e.g. a migration version.
    #[schemars(with = "Option<serde_json::Value>")]
    expect: Option<serde_json::Value>,
    /// Slowest acceptable connect + authenticate + SELECT 1, e.g. "200ms".
    max_latency: Option<Dur>,
    /// PEM file of the CA roots to trust for TLS (sslmode=require verifies against it).
    ca_file: Option<String>,
    /// Verify the server certificate (default: only for sslmode=verify-full/verify-ca or with ca_file).
    tls_verify: Option<bool>,
    /// Client certificate to present (PEM file, or PEM text from ${secret:file:...}), for clientcert=verify-full.
    cert_file: Option<String>,
    /// The client certificate's private key (PEM file, or PEM text from ${secret:file:...}).
    key_file: Option<String>,
}

#[derive(Clone)]
struct Postgres {
    t: Target,
    /// Every host of the DSN, in order, as libpq reads them.
    dials: Vec<Dial>,
    config: tokio_postgres::Config,
    tls: Option<TlsOpts>,
    tables: Vec<String>,
    query: Option<String>,
    expect: Option<String>,
    max_latency: Option<Duration>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let shown = crate::config::secrets::redact_url_passwords(target);
    // tokio-postgres knows sslmode disable/prefer/require only: verify-ca and
    // verify-full are require plus certificate verification.
    let mut verify = false;
    let mut text = target.trim().to_string();
    for mode in ["verify-full", "verify-ca"] {
        if text.contains(&format!("sslmode={mode}")) {
            text = text.replace(&format!("sslmode={mode}"), "sslmode=require");
            verify = true;
        }
    }
    let mut config: tokio_postgres::Config = text.parse().map_err(|e: tokio_postgres::Error| {
        ParamError::new(
            "target",
            service::scrub(&format!("`{shown}` is not a PostgreSQL DSN: {e}"), None),
        )
    })?;
    let dials = dials(&config, &shown)?;
    let (host, port) = (dials[0].name.clone(), dials[0].port);
    if config.get_user().is_none() {
        // libpq's default: the operating system's user name.
        config.user(std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
    }
    config.application_name("envgate");
    let password = config.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
    let url = url::Url::parse(&format!("postgres://{}:{port}/", bracket(&host)))
        .map_err(|e| ParamError::new("target", format!("`{shown}`: {e}")))?;
    let t = Target {
        component: "PostgreSQL",
        url,
        host,
        port,
        user: config.get_user().unwrap_or_default().to_string(),
        password,
        shown,
        tls: config.get_ssl_mode() == SslMode::Require,
        tls_hint: "add sslmode=require".into(),
    };
    if let Some(q) = &d.query {
        single_read(q, Dialect::Postgres).map_err(|m| ParamError::new("query", m))?;
    }
    // libpq's default, sslmode=prefer, tries TLS (unverified unless `ca_file`
    // says otherwise) and falls back to plain text when the server declines:
    // so does the probe, or a server that admits TLS logins only would fail
    // here while the service connects fine.
    let client = super::certs::ClientCert::from_params(d.cert_file.clone(), d.key_file.clone())?;
    if client.is_some() && config.get_ssl_mode() == SslMode::Disable {
        return Err(ParamError::new(
            "cert_file",
            "a client certificate needs TLS: drop sslmode=disable",
        ));
    }
    let tls = (config.get_ssl_mode() != SslMode::Disable)
        .then(|| TlsOpts::new(d.ca_file.clone(), d.tls_verify, verify).with_client(client));
    Ok(Box::new(Postgres {
        t,
        dials,
        config,
        tls,
        expect: service::expect_text(d.expect.as_ref(), d.query.as_deref())?,
        tables: d.tables,
        query: d.query,
        max_latency: d.max_latency.map(|m| m.0),
    }))
}

/// One host of a DSN: what is dialed (its `hostaddr`, else its `host`), the
/// name TLS verifies (its `host`, else the address), and its port.
#[derive(Clone)]
struct Dial {
    dial: String,
    name: String,
    port: u16,
}

/// libpq's pairing of `host`, `hostaddr` and `port` lists: the i-th of each,
/// one port for every host, or 5432.
fn dials(config: &tokio_postgres::Config, shown: &str) -> Result<Vec<Dial>, ParamError> {
    let (hosts, addrs, ports) = (config.get_hosts(), config.get_hostaddrs(), config.get_ports());
    let n = hosts.len().max(addrs.len());
    if n == 0 {
        return Err(ParamError::new("target", format!("`{shown}` names no host")));
    }
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(ParamError::new(
            "target",
            format!(
                "`{shown}` names {} hosts and {} hostaddrs: give one hostaddr per host",
                hosts.len(),
                addrs.len()
            ),
        ));
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(ParamError::new(
            "target",
            format!(
                "`{shown}` names {n} hosts and {} ports: give one port, or one per host",
                ports.len()
            ),
        ));
    }
    (0..n)
        .map(|i| {
            let name = match hosts.get(i) {
                Some(Host::Tcp(h)) => Some(h.clone()),
                Some(Host::Unix(p)) => {
                    return Err(ParamError::new(
                        "target",
                        format!("`{shown}` names a unix socket ({}): probes dial TCP hosts", p.display()),
                    ));
                }
                None => None,
            };
            let addr = addrs.get(i).map(ToString::to_string);
            let dial = addr.or_else(|| name.clone()).unwrap_or_default();
            Ok(Dial {
                name: name.unwrap_or_else(|| dial.clone()),
                dial,
                port: ports.get(i).or(ports.first()).copied().unwrap_or(5432),
            })
        })
        .collect()
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl Probe for Postgres {
    /// Every `host` and `hostaddr` of the DSN: the addresses are dialed, the
    /// names are what TLS verifies and what a libpq client without
    /// `hostaddr` would dial.
    fn hosts(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        for d in &self.dials {
            for h in [&d.dial, &d.name] {
                let e = Endpoint::new(h.as_str(), d.port);
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        out
    }

    /// Every host of a multi-host DSN, each on every address: a client
    /// fails over to the next host, so one down is a warning, all down a
    /// failure.
    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let tries = self.dials.iter().map(|d| async move {
                let o = self
                    .t
                    .sessions_at(ctx, &d.dial, d.port, |addr| self.once(ctx, &d.name, addr))
                    .await;
                (format!("{}:{}", bracket(&d.dial), d.port), o)
            });
            self.t.named(combine(join_all(tries).await, "hosts"))
        })
    }

    fn load(&self) -> Option<Arc<dyn super::load::Load>> {
        Some(Arc::new(PgLoad(self.clone())))
    }
}

/// What one load connection may read in all (each message keeps its bound).
const LOAD_LIMIT: u64 = 1 << 30;

/// A load over one logged-in connection per worker, to the DSN's first
/// host: the probe's `query` (else `SELECT 1`), prepared once, each run
/// fetching every row. The session is read-only (`SET SESSION
/// CHARACTERISTICS AS TRANSACTION READ ONLY`), and `query` is one
/// statement that reads, as for the probe.
struct PgLoad(Postgres);

impl super::load::Load for PgLoad {
    fn endpoint(&self) -> Endpoint {
        let d = &self.0.dials[0];
        Endpoint::new(d.dial.as_str(), d.port)
    }

    fn open<'a>(
        &'a self,
        ctx: &'a Ctx,
        addr: SocketAddr,
    ) -> BoxFuture<'a, Result<Box<dyn super::load::Session>, Outcome>> {
        Box::pin(async move {
            let p = &self.0;
            let name = p.dials[0].name.clone();
            let tcp = ctx.connect(addr).await?;
            let raw = Limited::new(tcp, Meter::new(LOAD_LIMIT));
            let client = match &p.tls {
                None => p.spawned(addr, Frames::new(raw, Phase::Messages, LIMIT), NoTls).await?,
                Some(opts) => {
                    let config = opts.config(ctx).map_err(|e| p.t.fail(Class::Tls, e))?;
                    let phase = match p.config.get_ssl_negotiation() {
                        SslNegotiation::Direct => Phase::Tls,
                        _ => Phase::SslAnswer,
                    };
                    let s = Frames::new(raw, phase, LIMIT);
                    let mut make = tokio_postgres_rustls::MakeRustlsConnect::new(config);
                    let tls =
                        MakeTlsConnect::<Frames<Limited<tokio::net::TcpStream>>>::make_tls_connect(&mut make, &name)
                            .map_err(|e| {
                                p.t.fail(Class::Tls, format!("`{name}` is not a valid TLS server name: {e}"))
                            })?;
                    p.spawned(addr, s, Guarded { tls, max: LIMIT }).await?
                }
            };
            client
                .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                .await
                .map_err(|e| p.error(addr, "making the session read-only", &e))?;
            let q = p.query.as_deref().unwrap_or("SELECT 1");
            let stmt = client
                .prepare(q)
                .await
                .map_err(|e| p.error(addr, "preparing `query`", &e))?;
            Ok(Box::new(PgSession {
                p: p.clone(),
                client,
                stmt,
                addr,
            }) as Box<dyn super::load::Session>)
        })
    }
}

struct PgSession {
    p: Postgres,
    client: Client,
    stmt: tokio_postgres::Statement,
    addr: SocketAddr,
}

impl super::load::Session for PgSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            self.client
                .query(&self.stmt, &[])
                .await
                .map(drop)
                .map_err(|e| self.p.error(self.addr, "running `query`", &e))
        })
    }
}

impl Postgres {
    /// Log in and drive the connection on its own task (a load's session).
    async fn spawned<S, T>(&self, addr: SocketAddr, stream: S, tls: T) -> Result<Client, Outcome>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        T: TlsConnect<S>,
        T::Stream: Send + 'static,
    {
        let (client, connection) = self
            .config
            .connect_raw(stream, tls)
            .await
            .map_err(|e| self.error(addr, "logging in", &e))?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn once(&self, ctx: &Ctx, name: &str, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        let tcp = match ctx.connect(addr).await {
            Ok(s) => s,
            Err(o) => return (o, None),
        };
        let meter = Meter::new(LIMIT);
        let raw = Limited::new(tcp, meter.clone());
        let Some(opts) = &self.tls else {
            let s = Frames::new(raw, Phase::Messages, LIMIT);
            return self.session(addr, start, s, NoTls, meter).await;
        };
        let config = match opts.config(ctx) {
            Ok(c) => c,
            Err(e) => return (self.t.fail(Class::Tls, e), None),
        };
        // After an SSLRequest the server's first byte says whether TLS
        // follows; with direct negotiation TLS starts at once.
        let phase = match self.config.get_ssl_negotiation() {
            SslNegotiation::Direct => Phase::Tls,
            _ => Phase::SslAnswer,
        };
        let s = Frames::new(raw, phase, LIMIT);
        let mut make = tokio_postgres_rustls::MakeRustlsConnect::new(config);
        match MakeTlsConnect::<Frames<Limited<tokio::net::TcpStream>>>::make_tls_connect(&mut make, name) {
            Ok(tls) => self.session(addr, start, s, Guarded { tls, max: LIMIT }, meter).await,
            Err(e) => (
                self.t
                    .fail(Class::Tls, format!("`{name}` is not a valid TLS server name: {e}")),
                None,
            ),
        }
    }

    /// Log in and check, driving the connection on this task; then the
    /// goodbye: the client is dropped, the connection sends Terminate and
    /// closes.
    async fn session<S, T>(&self, addr: SocketAddr, start: Instant, stream: S, tls: T, meter: Arc<Meter>) -> Ended
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        T: TlsConnect<S>,
        T::Stream: Send + 'static,
    {
        let (mut client, connection) = match self.config.connect_raw(stream, tls).await {
            Ok(c) => c,
            Err(_) if meter.exceeded() => return (self.too_much(addr, &meter), None),
            Err(e) => return (self.error(addr, "logging in", &e), None),
        };
        let mut connection = Box::pin(connection);
        let mut broken = None;
        let mut o = {
            let work = self.checks(addr, start, &mut client);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    o = &mut work => break o,
                    r = &mut connection, if broken.is_none() => broken = Some(r),
                }
            }
        };
        // The connection's own error says more than the "connection
        // closed" the client saw.
        if let (true, Some(Err(e))) = (o.verdict == super::Verdict::Fail, &broken) {
            o = self.error(addr, "talking to the server", e);
        }
        if o.verdict == super::Verdict::Fail && meter.exceeded() {
            o = self.too_much(addr, &meter);
        }
        drop(client);
        let goodbye: Option<service::Goodbye> = broken.is_none().then(|| {
            Box::pin(async move {
                let _ = connection.await;
            }) as service::Goodbye
        });
        (o, goodbye)
    }

    async fn checks(&self, addr: SocketAddr, start: Instant, client: &mut Client) -> Outcome {
        let version = match client.simple_query("SELECT 1, current_setting('server_version')").await {
            Ok(rows) => first_value(&rows, 1).unwrap_or_default(),
            Err(e) => return self.error(addr, "running SELECT 1", &e),
        };
        let latency = start.elapsed();
        for table in &self.tables {
            match client
                .query_one("SELECT to_regclass($1)::text", &[table])
                .await
                .map(|r| r.get::<_, Option<String>>(0))
            {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let hint = match suggest_table(client, table).await {
                        Some(s) => format!(" (did you mean `{s}`?)"),
                        None => String::new(),
                    };
                    return self
                        .t
                        .fail(
                            Class::NotFound,
                            format!("table `{table}` does not exist in database `{}`{hint}", self.db()),
                        )
                        .about("tables", table);
                }
                Err(e) => return self.error(addr, &format!("looking up table `{table}`"), &e),
            }
        }
        if let Some(q) = &self.query {
            let got = match first_of(client, q).await {
                Ok(g) => g,
                Err(e) => return self.error(addr, "running `query`", &e),
            };
            let got = match got {
                Ok(g) => g,
                Err(msg) => return self.t.fail(Class::Body, msg),
            };
            if let Some(want) = &self.expect
                && !service::expect_matches(want, got.as_deref())
            {
                let got = got.map_or("no row".into(), |g| format!("{:?}", super::bounded::cut(&g, 200)));
                return self
                    .t
                    .fail(Class::Body, format!("expected `query` to return {want:?}, got {got}"));
            }
        }
        if let Some(o) = service::over_latency(&self.t, "connect, log in and SELECT 1", latency, self.max_latency) {
            return o;
        }
        let mut msg = format!(
            "PostgreSQL {} on {addr}: logged in as `{}` to `{}`, SELECT 1 in {}",
            super::bounded::cut(&version, 40),
            self.t.user,
            self.db(),
            service::ms(latency)
        );
        if !self.tables.is_empty() {
            msg.push_str(&format!("; {} table(s) exist", self.tables.len()));
        }
        Outcome::pass(msg)
    }

    fn db(&self) -> &str {
        self.config.get_dbname().or(self.config.get_user()).unwrap_or_default()
    }

    /// The byte bound ended the connection: whatever the driver said, that is why.
    fn too_much(&self, addr: SocketAddr, meter: &Meter) -> Outcome {
        self.t.fail(
            Class::Protocol,
            format!("{addr}: {} (is this a PostgreSQL port?)", meter.message()),
        )
    }

    /// A driver error as a failure class a person can act on.
    fn error(&self, addr: SocketAddr, doing: &str, e: &tokio_postgres::Error) -> Outcome {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            // pg_hba's `cert` / `clientcert=verify-*` refuse after the
            // handshake: "connection requires a valid client certificate".
            if code.code().starts_with("28") && db.message().contains("client certificate") {
                let has = self.tls.as_ref().is_some_and(|t| t.client.is_some());
                let why = if has {
                    "the server refused the client certificate: check that its CA trusts `cert_file` and that the certificate's CN is the user"
                } else {
                    "the server requires a client certificate: set `cert_file` and `key_file`"
                };
                return self.t.fail(
                    Class::Tls,
                    format!(
                        "{doing} on {addr}: {why} (server said: {}, SQLSTATE {})",
                        super::bounded::cut(db.message(), 300),
                        code.code()
                    ),
                );
            }
            let class = if *code == SqlState::INVALID_PASSWORD || code.code().starts_with("28") {
                Class::Auth
            } else if *code == SqlState::INVALID_CATALOG_NAME || *code == SqlState::UNDEFINED_TABLE {
                Class::NotFound
            } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
                Class::Permission
            } else if *code == SqlState::TOO_MANY_CONNECTIONS {
                Class::Capacity
            } else if *code == SqlState::CANNOT_CONNECT_NOW {
                Class::Refused
            } else {
                Class::Body
            };
            return self.t.fail(
                class,
                format!(
                    "{doing} on {addr}: {} (SQLSTATE {})",
                    super::bounded::cut(db.message(), 300),
                    code.code()
                ),
            );
        }
        let handshake = e.to_string().starts_with("error performing TLS handshake");
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if handshake || io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                    return self.t.named(service::handshake_failed(addr, &self.t.host, io));
                }
                if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<TooMuch>()) {
                    return self.t.fail(
                        Class::Protocol,
                        format!("{doing} on {addr}: {t} (is this a PostgreSQL port?)"),
                    );
                }
                return self.t.named(io_outcome(addr, io));
            }
            if let Some(t) = s.downcast_ref::<rustls::Error>() {
                return self.t.fail(
                    Class::Tls,
                    format!("TLS with {addr}: {}", super::certs::explain(t, &self.t.host)),
                );
            }
            src = s.source();
        }
        let text = e.to_string();
        let class = if handshake || text.contains("TLS") || text.contains("SSL") {
            Class::Tls
        } else if text.contains("closed") {
            Class::Refused
        } else {
            Class::Protocol
        };
        self.t
            .fail(class, format!("{doing} on {addr}: {text} (is this a PostgreSQL port?)"))
    }
}

/// The first value of the first row of `q`: one statement (a Parse of two
/// fails), in a read-only transaction rolled back afterwards, at most one
/// row fetched. The inner `Err` is a value the probe cannot compare.
async fn first_of(client: &mut Client, q: &str) -> Result<Result<Option<String>, String>, tokio_postgres::Error> {
    let tx = client.build_transaction().read_only(true).start().await?;
    let stmt = tx.prepare(q).await?;
    if stmt.columns().is_empty() {
        return Ok(Err(
            "`query` returns no rows: write a SELECT whose first column `expect` checks".into(),
        ));
    }
    let portal = tx.bind(&stmt, &[]).await?;
    let rows = tx.query_portal(&portal, 1).await?;
    let got = match rows.first() {
        None => Ok(None),
        Some(row) => row.try_get::<_, AsText>(0)?.0.map_err(|ty| {
            format!("the first column of `query` is of type {ty}, which `expect` cannot compare: cast it, e.g. `SELECT x::text`")
        }),
    };
    tx.rollback().await?;
    Ok(got)
}

/// The closest existing table to `missing`, from a bounded listing.
async fn suggest_table(client: &Client, missing: &str) -> Option<String> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
             ORDER BY 1, 2 LIMIT 500",
            &[],
        )
        .await
        .ok()?;
    let names: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (schema, table) = (r.try_get::<_, String>(0).ok()?, r.try_get::<_, String>(1).ok()?);
            Some(if missing.contains('.') || schema != "public" {
                format!("{schema}.{table}")
            } else {
                table
            })
        })
        .collect();
    did_you_mean(missing, names.iter().map(String::as_str)).map(String::from)
}

/// The `col`-th value of the first row of a simple query's answer.
fn first_value(rows: &[SimpleQueryMessage], col: usize) -> Option<String> {
    rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r.get(col).map(String::from)),
        _ => None,
    })?
}
