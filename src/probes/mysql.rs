//! `mysql`: MySQL or MariaDB accepts the URL's credentials (MySQL 8's
//! caching_sha2_password included), opens its database and answers
//! `SELECT 1`; optionally tables exist and a query returns the expected
//! value. Never writes.
//!
//! `query` is one statement that reads (checked when the probe is built),
//! sent as one prepared statement (the server refuses a second statement
//! there) inside a read-only transaction that is rolled back.
//!
//! Bounds: a packet is at most 1 MiB once logged in (4 MiB during the
//! handshake): the driver compares each length prefix with that before
//! reading it, and rows after the first are read and dropped. Goodbye:
//! COM_QUIT and close, after the verdict and under its own short bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Value};

use super::bounded::cut;
use super::net::io_outcome;
use super::param::Dur;
use super::service::{self, Ended, Target};
use super::sql::{Dialect, single_read};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};
use crate::config::suggest::did_you_mean;

/// The largest packet once logged in (the driver's own default, 4 MiB,
/// applies to the handshake).
const PACKET: usize = 1 << 20;

pub static KIND: Kind = Kind {
    name: "mysql",
    doc: "MySQL or MariaDB accepts the credentials, opens the database and answers SELECT 1",
    target: "a mysql:// or mariadb:// URL (TLS with ?require_ssl=true)",
    schemes: &["mysql", "mariadb"],
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
    /// PEM file of the CA roots to trust for TLS instead of the built-in ones (implies TLS).
    ca_file: Option<String>,
    /// Verify the server certificate (default true).
    tls_verify: Option<bool>,
    /// Client certificate to present (PEM file, or PEM text from ${secret:file:...}), for REQUIRE X509 accounts (implies TLS).
    cert_file: Option<String>,
    /// The client certificate's private key (PEM file, or PEM text from ${secret:file:...}).
    key_file: Option<String>,
}

#[derive(Clone)]
struct Mysql {
    t: Target,
    opts: Opts,
    /// TLS settings from the parameters, over the URL's `require_ssl`.
    ssl: Option<mysql_async::SslOpts>,
    /// A client certificate is presented.
    identified: bool,
    tables: Vec<String>,
    query: Option<String>,
    expect: Option<String>,
    max_latency: Option<Duration>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let t = Target::parse("MySQL", target, &[("mysql", 3306, false), ("mariadb", 3306, false)])?;
    let text = match target.trim().strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => target.trim().to_string(),
    };
    let opts = Opts::from_url(&text)
        .map_err(|e| ParamError::new("target", t.scrub(&format!("`{}` is not a MySQL URL: {e}", t.shown))))?;
    if let Some(q) = &d.query {
        single_read(q, Dialect::Mysql).map_err(|m| ParamError::new("query", m))?;
    }
    let client = super::certs::ClientCert::from_params(d.cert_file, d.key_file)?;
    let identified = client.is_some();
    let ssl = (d.ca_file.is_some() || d.tls_verify.is_some() || client.is_some()).then(|| {
        use mysql_async::{ClientIdentity, SslOpts};
        let mut o = opts.ssl_opts().cloned().unwrap_or_default();
        if let Some(ca) = &d.ca_file {
            o = o.with_root_certs(vec![pob(ca)]).with_disable_built_in_roots(true);
        }
        if let Some(c) = &client {
            o = o.with_client_identity(Some(ClientIdentity::new(pob(&c.cert), pob(&c.key))));
        }
        let verify = d.tls_verify.unwrap_or(true);
        SslOpts::with_danger_accept_invalid_certs(o, !verify)
            // The probe dials an address: the certificate is checked for
            // the name the target gives.
            .with_danger_tls_hostname_override(Some(t.host.clone()))
    });
    Ok(Box::new(Mysql {
        t,
        opts,
        ssl,
        identified,
        expect: service::expect_text(d.expect.as_ref(), d.query.as_deref())?,
        tables: d.tables,
        query: d.query,
        max_latency: d.max_latency.map(|m| m.0),
    }))
}

/// A path, or PEM text as `${secret:file:...}` gives it, as the driver takes it.
fn pob<T: From<Vec<u8>> + From<std::path::PathBuf>>(v: &str) -> T {
    if v.trim_start().starts_with("-----BEGIN") {
        v.as_bytes().to_vec().into()
    } else {
        std::path::PathBuf::from(v).into()
    }
}

impl Probe for Mysql {
    fn hosts(&self) -> Vec<Endpoint> {
        vec![self.t.endpoint()]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.sessions(ctx, |addr| self.once(ctx, addr)).await })
    }

    fn load(&self) -> Option<std::sync::Arc<dyn super::load::Load>> {
        Some(std::sync::Arc::new(MysqlLoad(self.clone())))
    }
}

/// A load over one logged-in connection per worker: the probe's `query`
/// (else `SELECT 1`) as a prepared statement, every row read. The session is
/// read-only (`SET SESSION TRANSACTION READ ONLY`), and `query` is one
/// statement that reads, as for the probe.
struct MysqlLoad(Mysql);

impl super::load::Load for MysqlLoad {
    fn endpoint(&self) -> Endpoint {
        self.0.t.endpoint()
    }

    fn open<'a>(
        &'a self,
        ctx: &'a Ctx,
        addr: SocketAddr,
    ) -> BoxFuture<'a, Result<Box<dyn super::load::Session>, Outcome>> {
        Box::pin(async move {
            let m = &self.0;
            ctx.admit(addr)?;
            let opts = OptsBuilder::from_opts(m.opts.clone())
                .ip_or_hostname(addr.ip().to_string())
                .tcp_port(addr.port())
                .prefer_socket(false)
                .stmt_cache_size(1)
                .max_allowed_packet(Some(PACKET));
            let mut conn = Conn::new(opts).await.map_err(|e| m.error(addr, "logging in", &e))?;
            conn.query_drop("SET SESSION TRANSACTION READ ONLY")
                .await
                .map_err(|e| m.error(addr, "making the session read-only", &e))?;
            let q = m.query.clone().unwrap_or_else(|| "SELECT 1".into());
            let stmt = conn
                .prep(q.as_str())
                .await
                .map_err(|e| m.error(addr, "preparing `query`", &e))?;
            Ok(Box::new(MysqlSession {
                m: m.clone(),
                conn,
                stmt,
                addr,
            }) as Box<dyn super::load::Session>)
        })
    }
}

struct MysqlSession {
    m: Mysql,
    conn: Conn,
    stmt: mysql_async::Statement,
    addr: SocketAddr,
}

impl super::load::Session for MysqlSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            self.conn
                .exec_drop(&self.stmt, ())
                .await
                .map_err(|e| self.m.error(self.addr, "running `query`", &e))
        })
    }
}

impl Mysql {
    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        // mysql_async opens its own socket: it is given this address (never
        // a name it would resolve itself, never a unix socket the server
        // might advertise), and only once isolation admits it.
        if let Err(o) = ctx.admit(addr) {
            return (o, None);
        }
        let opts = OptsBuilder::from_opts(self.opts.clone())
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .prefer_socket(false)
            .stmt_cache_size(0)
            .max_allowed_packet(Some(PACKET));
        let opts = match &self.ssl {
            Some(ssl) => opts.ssl_opts(ssl.clone()),
            None => opts,
        };
        let mut conn = match Conn::new(opts).await {
            Ok(c) => c,
            Err(e) => return (self.error(addr, "logging in", &e), None),
        };
        let o = self.checks(addr, start, &mut conn).await;
        // COM_QUIT, then the socket closes.
        let goodbye = async move {
            let _ = conn.disconnect().await;
        };
        (o, Some(Box::pin(goodbye)))
    }

    async fn checks(&self, addr: SocketAddr, start: Instant, conn: &mut Conn) -> Outcome {
        let version = match conn.query_first::<(i64, String), _>("SELECT 1, VERSION()").await {
            Ok(v) => v.map(|(_, v)| v).unwrap_or_default(),
            Err(e) => return self.error(addr, "running SELECT 1", &e),
        };
        let latency = start.elapsed();
        let db = self.opts.db_name().unwrap_or_default().to_string();
        for table in &self.tables {
            let (schema, name) = match table.split_once('.') {
                Some((s, n)) => (Some(s.to_string()), n.to_string()),
                None => (None, table.clone()),
            };
            let q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?";
            match conn.exec_first::<i64, _, _>(q, (schema.clone(), name)).await {
                Ok(Some(n)) if n > 0 => {}
                Ok(_) => {
                    let hint = match suggest_table(conn, schema, table).await {
                        Some(s) => format!(" (did you mean `{s}`?)"),
                        None => String::new(),
                    };
                    return self
                        .t
                        .fail(
                            Class::NotFound,
                            format!("table `{table}` does not exist in database `{db}`{hint}"),
                        )
                        .about("tables", table);
                }
                Err(e) => return self.error(addr, &format!("looking up table `{table}`"), &e),
            }
        }
        if let Some(q) = &self.query {
            let got = async {
                conn.query_drop("START TRANSACTION READ ONLY").await?;
                let row = conn.exec_first::<mysql_async::Row, _, _>(q.as_str(), ()).await;
                conn.query_drop("ROLLBACK").await?;
                row
            };
            let row = match got.await {
                Ok(r) => r,
                Err(e) => return self.error(addr, "running `query`", &e),
            };
            let got = row.as_ref().and_then(|r| r.as_ref(0)).and_then(text);
            if let Some(want) = &self.expect
                && !service::expect_matches(want, got.as_deref())
            {
                let got = got.map_or("no row".into(), |g| format!("{:?}", cut(&g, 200)));
                return self
                    .t
                    .fail(Class::Body, format!("expected `query` to return {want:?}, got {got}"));
            }
        }
        if let Some(o) = service::over_latency(&self.t, "connect, log in and SELECT 1", latency, self.max_latency) {
            return o;
        }
        let ms = service::ms(latency);
        let mut msg = format!(
            "MySQL {} on {addr}: logged in as `{}` to `{db}`, SELECT 1 in {ms}",
            cut(&version, 40),
            self.t.user
        );
        if !self.tables.is_empty() {
            msg.push_str(&format!("; {} table(s) exist", self.tables.len()));
        }
        Outcome::pass(msg)
    }

    fn error(&self, addr: SocketAddr, doing: &str, e: &mysql_async::Error) -> Outcome {
        use mysql_async::{Error as E, IoError};
        use std::io::ErrorKind;
        match e {
            E::Server(s) => {
                let class = match s.code {
                    // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR, ER_NOT_SUPPORTED_AUTH_MODE
                    1045 | 1698 | 1251 => Class::Auth,
                    // ER_BAD_DB_ERROR, ER_NO_SUCH_TABLE
                    1049 | 1146 => Class::NotFound,
                    // ER_DBACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED, ER_TABLEACCESS_DENIED_ERROR
                    1044 | 1130 | 1142 => Class::Permission,
                    // ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS
                    1040 | 1203 => Class::Capacity,
                    _ => Class::Body,
                };
                // An account that REQUIRE X509 (or SSL) is refused like a
                // wrong password: say what else it may be.
                let hint = if s.code == 1045 && !self.identified {
                    "; if the account requires a client certificate (REQUIRE X509), set `cert_file` and `key_file`"
                } else {
                    ""
                };
                self.t.fail(
                    class,
                    format!("{doing} on {addr}: {} (error {}){hint}", cut(&s.message, 300), s.code),
                )
            }
            // A TLS failure (rustls inside an I/O error): the certificate
            // or the handshake, said as the other kinds say it.
            E::Io(IoError::Io(io))
                if super::bounded::innermost(io)
                    .get_ref()
                    .is_some_and(|i| i.is::<rustls::Error>()) =>
            {
                self.t.named(service::handshake_failed(addr, &self.t.host, io))
            }
            // The driver's own refusals (a packet over the bound, a
            // malformed one) come as I/O errors without an OS error.
            E::Io(IoError::Io(io))
                if io.raw_os_error().is_none() && matches!(io.kind(), ErrorKind::Other | ErrorKind::InvalidData) =>
            {
                self.t.fail(
                    Class::Protocol,
                    format!(
                        "{doing} on {addr}: {} (is this a MySQL port?)",
                        cut(&io.to_string(), 200)
                    ),
                )
            }
            E::Io(IoError::Io(io)) => self.t.named(io_outcome(addr, super::bounded::innermost(io))),
            E::Io(IoError::Tls(t)) => self.t.fail(Class::Tls, format!("TLS with {addr}: {t}")),
            E::Driver(d) => self.t.fail(
                Class::Protocol,
                format!("{doing} on {addr}: {d} (is this a MySQL port?)"),
            ),
            other => self.t.fail(Class::Protocol, format!("{doing} on {addr}: {other}")),
        }
    }
}

/// The closest existing table to `missing`, from a bounded listing.
async fn suggest_table(conn: &mut Conn, schema: Option<String>, missing: &str) -> Option<String> {
    let q = "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_schema = COALESCE(?, DATABASE()) ORDER BY 1, 2 LIMIT 500";
    let rows: Vec<(String, String)> = conn.exec(q, (schema.clone(),)).await.ok()?;
    let names: Vec<String> = rows
        .into_iter()
        .map(|(s, t)| if schema.is_some() { format!("{s}.{t}") } else { t })
        .collect();
    did_you_mean(missing, names.iter().map(String::as_str)).map(String::from)
}

/// A value as the text a person would compare.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(f) => Some(f.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}
