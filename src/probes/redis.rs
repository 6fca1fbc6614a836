//! `redis`: AUTH (password or ACL user), SELECT the URL's database, PING;
//! optionally keys exist (EXISTS). Speaks RESP2 itself: a handful of
//! commands do not need a client library, and every reply is classified
//! here. Never writes.
//!
//! Topologies: behind Sentinel (`redis+sentinel://s1,s2/master` or
//! `sentinels` + `master_name`) the sentinels are asked for the master's
//! address in turn, then the master is probed and must answer ROLE as
//! master. In a Cluster a key's `MOVED`/`ASK` redirect is followed to the
//! node that owns it (at most 5 hops, each address admitted by isolation),
//! and `cluster = true` checks `CLUSTER INFO` says `cluster_state:ok`.
//!
//! Bounds: a reply line is at most 4 KiB, a bulk reply at most 4 KiB, an
//! array 1,024 elements and 4 levels deep; a connection reads at most
//! 256 KiB in all, TLS handshake included. Goodbye: QUIT, then close, after
//! the verdict and under its own short bound.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};

use super::bounded::{self, number, read_line};
use super::load::{Load, Session};
use super::param::Dur;
use super::service::{self, Ended, Target, TlsOpts};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "redis",
    doc: "Redis (or Valkey) accepts the credentials, selects the database and answers PING; directly, behind Sentinel or in a Cluster",
    target: "a redis://, rediss:// (TLS), valkey:// or valkeys:// URL: redis://[user:password@]host[:port][/db]; behind Sentinel redis+sentinel://[user:password@]sentinel1[:port][,sentinel2[:port]]/master_name[/db]",
    schemes: &[
        "redis",
        "rediss",
        "valkey",
        "valkeys",
        "redis+sentinel",
        "rediss+sentinel",
    ],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Keys that must exist in the selected database.
    #[serde(default)]
    keys: Vec<String>,
    /// Slowest acceptable connect + AUTH + PING, e.g. "50ms".
    max_latency: Option<Dur>,
    /// rediss: PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// rediss: verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// rediss: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// rediss: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
    /// With `[probe.load]`: each request is `GET` of this key instead of `PING`.
    load_key: Option<String>,
    /// Sentinels to ask for the master (`host[:port]`, port 26379 by default), instead of a redis+sentinel:// target; the target's credentials, database and TLS apply to the master, its host is not dialed.
    #[serde(default)]
    sentinels: Vec<String>,
    /// The master's name as the sentinels know it (`sentinel monitor NAME ...`); with `sentinels`.
    master_name: Option<String>,
    /// The password the sentinels require (their own `requirepass`, or `sentinel_user`'s), when they require one.
    sentinel_password: Option<String>,
    /// The ACL user to authenticate to the sentinels as, with `sentinel_password`.
    sentinel_user: Option<String>,
    /// A Redis Cluster node: `CLUSTER INFO` must say `cluster_state:ok` (MOVED and ASK are followed either way).
    cluster: Option<bool>,
}

#[derive(Clone)]
struct Redis {
    load_key: Option<String>,
    t: Target,
    db: u32,
    keys: Vec<String>,
    max_latency: Option<Duration>,
    tls: TlsOpts,
    sentinel: Option<Sentinel>,
    cluster: bool,
}

/// Where the master is found: sentinels asked in order.
#[derive(Clone)]
struct Sentinel {
    nodes: Vec<(String, u16)>,
    master: String,
    user: Option<String>,
    password: Option<String>,
}

const SCHEMES: &[(&str, u16, bool)] = &[
    ("redis", 6379, false),
    ("rediss", 6380, true),
    ("valkey", 6379, false),
    ("valkeys", 6380, true),
];
const SENTINEL_PORT: u16 = 26379;
/// MOVED and ASK redirects followed for one key.
const MAX_HOPS: usize = 5;

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target.trim();
    let d: Params = spec.params()?;
    if d.sentinel_user.is_some() && d.sentinel_password.is_none() {
        return Err(ParamError::new(
            "sentinel_user",
            "`sentinel_user` logs in with `sentinel_password`: set it too",
        ));
    }
    let (t, db, sentinel) = match target.split_once("://") {
        Some((scheme @ ("redis+sentinel" | "rediss+sentinel"), rest)) => {
            if !d.sentinels.is_empty() || d.master_name.is_some() {
                return Err(ParamError::new(
                    "sentinels",
                    "a redis+sentinel:// target names its sentinels and master: drop `sentinels` and `master_name`",
                ));
            }
            sentinel_url(
                target,
                scheme,
                rest,
                d.sentinel_user.clone(),
                d.sentinel_password.clone(),
            )?
        }
        _ => {
            let t = Target::parse("Redis", target, SCHEMES)?;
            let path = t.path();
            let db = database(path.trim_end_matches('/'), t.query("db"), &t.shown)?;
            let sentinel = match (d.sentinels.is_empty(), d.master_name.clone()) {
                (true, None) => None,
                (false, Some(master)) => Some(Sentinel {
                    nodes: sentinel_nodes(d.sentinels.iter().map(String::as_str), "sentinels")?,
                    master,
                    user: d.sentinel_user.clone(),
                    password: d.sentinel_password.clone(),
                }),
                (true, Some(_)) => {
                    return Err(ParamError::new(
                        "master_name",
                        "`master_name` needs `sentinels` to ask for it",
                    ));
                }
                (false, None) => {
                    return Err(ParamError::new(
                        "sentinels",
                        "the sentinels need `master_name`: the name in `sentinel monitor NAME ...`",
                    ));
                }
            };
            (t, db, sentinel)
        }
    };
    Ok(Box::new(Redis {
        load_key: d.load_key,
        db,
        keys: d.keys,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true)
            .with_client(super::certs::ClientCert::from_params(d.cert_file, d.key_file)?),
        sentinel,
        cluster: d.cluster.unwrap_or(false),
        t,
    }))
}

/// The URL's database: its path, or `?db=`.
fn database(path: &str, query: Option<String>, shown: &str) -> Result<u32, ParamError> {
    match path {
        "" => query.map_or(Ok(0), |d| d.parse()),
        p => p.parse(),
    }
    .map_err(|_| {
        ParamError::new(
            "target",
            format!("`{shown}`: the database is a number, e.g. redis://host:6379/0"),
        )
    })
}

fn sentinel_nodes<'a>(list: impl Iterator<Item = &'a str>, param: &str) -> Result<Vec<(String, u16)>, ParamError> {
    let nodes = list
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| super::net::host_port(n, Some(SENTINEL_PORT)).map_err(|e| ParamError::new(param, e)))
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err(ParamError::new(param, "no sentinel is named"));
    }
    Ok(nodes)
}

/// `redis+sentinel://[user:password@]s1[:port],s2[:port]/master[/db]`: the
/// sentinels, and a target for the master holding the credentials.
fn sentinel_url(
    target: &str,
    scheme: &str,
    rest: &str,
    user: Option<String>,
    password: Option<String>,
) -> Result<(Target, u32, Option<Sentinel>), ParamError> {
    let shown = crate::config::secrets::redact_url_passwords(target);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // Options after `?` are not part of the master's name or the database.
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let nodes = sentinel_nodes(hosts.split(','), "target")?;
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let master = parts.next().filter(|m| !m.is_empty()).ok_or_else(|| {
        ParamError::new(
            "target",
            format!("`{shown}` names no master: redis+sentinel://sentinel:26379/MASTER_NAME[/db]"),
        )
    })?;
    let master = percent_encoding::percent_decode_str(master)
        .decode_utf8_lossy()
        .into_owned();
    // The master's credentials and TLS, in a URL the master target reads.
    let (host, port) = &nodes[0];
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let plain = if scheme == "rediss+sentinel" { "rediss" } else { "redis" };
    let auth = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let mut t = Target::parse("Redis", &format!("{plain}://{auth}{host}:{port}"), SCHEMES)?;
    t.shown = shown.clone();
    let db = database(parts.next().unwrap_or_default().trim_end_matches('/'), None, &shown)?;
    Ok((
        t,
        db,
        Some(Sentinel {
            nodes,
            master,
            user,
            password,
        }),
    ))
}

impl Probe for Redis {
    fn hosts(&self) -> Vec<Endpoint> {
        match &self.sentinel {
            // The master's address comes from a sentinel, and is admitted
            // when it is dialed.
            Some(s) => s.nodes.iter().map(|(h, p)| Endpoint::new(h, *p)).collect(),
            None => vec![self.t.endpoint()],
        }
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(sentinel) = &self.sentinel else {
                return self.t.sessions(ctx, |addr| self.once(ctx, &self.t, addr, false)).await;
            };
            let (host, port, asked, skipped) = match self.ask_sentinels(ctx, sentinel).await {
                Ok(found) => found,
                Err(o) => return self.t.named(o),
            };
            let mut master = self.t.clone();
            master.host.clone_from(&host);
            master.port = port;
            let mut o = master.sessions(ctx, |addr| self.once(ctx, &master, addr, true)).await;
            // Clients try the sentinels in turn too: one that did not answer
            // is worth knowing, not a failure.
            let skipped = match skipped {
                0 => String::new(),
                n => format!(", {n} before it did not answer"),
            };
            let found = format!(
                "master `{}` at {host}:{port} (from sentinel {asked}{skipped})",
                sentinel.master
            );
            if o.verdict == super::Verdict::Pass {
                o.message = format!("{found}: {}", o.message);
            } else {
                o.message = format!("{} [{found}]", o.message);
            }
            o
        })
    }

    fn load(&self) -> Option<std::sync::Arc<dyn Load>> {
        // A load goes to the one server the target names; behind Sentinel
        // that server is only known once a sentinel has been asked.
        if self.sentinel.is_some() {
            return None;
        }
        Some(std::sync::Arc::new(RedisLoad(self.clone())))
    }
}

/// What one load connection may read in all (each reply keeps its own bound).
const LOAD_LIMIT: u64 = 1 << 30;

/// A load over one logged-in connection per worker: `PING`, or `GET
/// load_key`, one at a time.
struct RedisLoad(Redis);

impl Load for RedisLoad {
    fn endpoint(&self) -> Endpoint {
        self.0.t.endpoint()
    }

    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Box<dyn Session>, Outcome>> {
        Box::pin(async move {
            let r = &self.0;
            let mut s = service::open(ctx, &r.t, &r.tls, addr, LOAD_LIMIT)
                .await
                .map_err(|o| r.t.named(o))?;
            let o = r.session(ctx, &mut s, &r.t, addr, Instant::now(), false).await;
            if o.verdict == super::Verdict::Fail {
                return Err(o);
            }
            let cmd = match &r.load_key {
                Some(k) => command(&["GET", k]),
                None => command(&["PING"]),
            };
            Ok(Box::new(RedisSession {
                r: r.clone(),
                s,
                addr,
                cmd,
            }) as Box<dyn Session>)
        })
    }
}

struct RedisSession {
    r: Redis,
    s: tokio::io::BufReader<Box<dyn service::Io>>,
    addr: SocketAddr,
    cmd: Vec<u8>,
}

impl Session for RedisSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            let what = if self.r.load_key.is_some() { "GET" } else { "PING" };
            match self.r.call(&mut self.s, &self.r.t, self.addr, &self.cmd, what).await? {
                Reply::Simple(_) | Reply::Bulk(_) => Ok(()),
                Reply::Error(e) => Err(self.r.refused(&self.r.t, &e, what)),
                other => Err(self.r.unexpected(&self.r.t, self.addr, what, &other)),
            }
        })
    }
}

/// What one connection may read in all, TLS handshake included.
const LIMIT: u64 = 256 << 10;
/// The longest reply line, and the longest bulk reply.
const LINE: usize = 4 << 10;

/// The most elements of one array reply, and how deep arrays may nest.
const ARRAY: u64 = 1024;
const DEPTH: usize = 4;

/// One RESP2 reply.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    /// A bulk string (`None` for a null bulk or a null array).
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// A cluster redirect: `MOVED 3999 127.0.0.1:6381` or `ASK ...`.
fn redirect(e: &str) -> Option<(bool, String, u16)> {
    let mut w = e.split_whitespace();
    let ask = match w.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let _slot = w.next()?;
    let (host, port) = super::net::host_port(w.next()?, None).ok()?;
    Some((ask, host, port))
}

impl Redis {
    /// Ask the sentinels in turn for the master's address: the first answer
    /// wins; the host and port, and which sentinel said so.
    async fn ask_sentinels(&self, ctx: &Ctx, s: &Sentinel) -> Result<(String, u16, String, usize), Outcome> {
        let mut failures = Vec::new();
        for (host, port) in &s.nodes {
            let mut st = self.t.clone();
            st.component = "Redis Sentinel";
            st.host.clone_from(host);
            st.port = *port;
            st.shown = format!("{host}:{port}");
            st.user = s.user.clone().unwrap_or_default();
            st.password.clone_from(&s.password);
            let found = Mutex::new(None);
            let o = ctx
                .each_addr(host, *port, |addr| {
                    let (st, found) = (&st, &found);
                    async move {
                        let mut conn = match service::open(ctx, st, &self.tls, addr, LIMIT).await {
                            Ok(c) => c,
                            Err(o) => return st.named(o),
                        };
                        if let Some(o) = self.auth(&mut conn, st, addr).await {
                            return o;
                        }
                        let cmd = command(&["SENTINEL", "get-master-addr-by-name", &s.master]);
                        match self.call(&mut conn, st, addr, &cmd, "asking for the master").await {
                            Ok(Reply::Array(a)) if a.len() == 2 => {
                                let ip = a[0].text().unwrap_or_default();
                                match a[1].text().and_then(|p| p.parse::<u16>().ok()) {
                                    Some(port) if !ip.is_empty() => {
                                        *found.lock().expect("no poisoning") = Some((ip, port));
                                        Outcome::pass("")
                                    }
                                    _ => st.fail(Class::Protocol, format!("{addr} named no master address")),
                                }
                            }
                            Ok(Reply::Bulk(None)) => st.fail(
                                Class::NotFound,
                                format!("does not monitor a master named `{}` (asked {addr})", s.master),
                            ),
                            Ok(Reply::Error(e)) => self.refused(st, &e, "SENTINEL"),
                            Ok(other) => self.unexpected(st, addr, "SENTINEL get-master-addr-by-name", &other),
                            Err(o) => o,
                        }
                    }
                })
                .await;
            if let Some((ip, p)) = found.into_inner().expect("no poisoning") {
                return Ok((ip, p, format!("{host}:{port}"), failures.len()));
            }
            if o.class == Some(Class::Isolation) {
                return Err(o);
            }
            failures.push(o);
        }
        // No sentinel knew: a not_found answer says more than a refusal.
        let class = failures
            .iter()
            .find(|o| o.class == Some(Class::NotFound))
            .or(failures.first())
            .and_then(|o| o.class)
            .unwrap_or(Class::Refused);
        // Each without its class word: the outcome has one.
        let all: Vec<String> = failures
            .into_iter()
            .map(|o| match o.class {
                Some(c) => o
                    .message
                    .strip_prefix(&format!("{}: ", c.as_str()))
                    .map_or(o.message.clone(), String::from),
                None => o.message,
            })
            .collect();
        Err(self.t.fail(
            class,
            format!("no sentinel named master `{}`: {}", s.master, all.join("; ")),
        ))
    }

    async fn once(&self, ctx: &Ctx, t: &Target, addr: SocketAddr, master: bool) -> Ended {
        let start = Instant::now();
        let mut s = match service::open(ctx, t, &self.tls, addr, LIMIT).await {
            Ok(s) => s,
            Err(o) => return (t.named(o), None),
        };
        let o = self.session(ctx, &mut s, t, addr, start, master).await;
        // QUIT is answered with +OK and the server closes its side.
        let goodbye = async move {
            if s.get_mut().write_all(&command(&["QUIT"])).await.is_ok() {
                let _ = read_reply(&mut s).await;
            }
            let _ = s.get_mut().shutdown().await;
        };
        (o, Some(Box::pin(goodbye)))
    }

    /// AUTH with the target's password (and ACL user), if it has one.
    async fn auth<S>(&self, s: &mut S, t: &Target, addr: SocketAddr) -> Option<Outcome>
    where
        S: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        let pw = t.password.as_ref()?;
        let auth = if t.user.is_empty() {
            command(&["AUTH", pw])
        } else {
            command(&["AUTH", &t.user, pw])
        };
        match self.call(s, t, addr, &auth, "authenticating").await {
            Ok(Reply::Simple(_)) => None,
            Ok(Reply::Error(e)) => Some(self.refused(t, &e, "AUTH")),
            Ok(other) => Some(self.unexpected(t, addr, "AUTH", &other)),
            Err(o) => Some(o),
        }
    }

    async fn session<S>(
        &self,
        ctx: &Ctx,
        s: &mut S,
        t: &Target,
        addr: SocketAddr,
        start: Instant,
        master: bool,
    ) -> Outcome
    where
        S: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        if let Some(o) = self.auth(s, t, addr).await {
            return o;
        }
        if self.db != 0 {
            let db = self.db.to_string();
            match self
                .call(s, t, addr, &command(&["SELECT", &db]), "selecting the database")
                .await
            {
                Ok(Reply::Simple(_)) => {}
                Ok(Reply::Error(e)) if e.contains("out of range") || e.contains("invalid DB index") => {
                    return t.fail(
                        Class::NotFound,
                        format!("database {db} does not exist: {}", bounded::cut(&e, 200)),
                    );
                }
                Ok(Reply::Error(e)) => return self.refused(t, &e, "SELECT"),
                Ok(other) => return self.unexpected(t, addr, "SELECT", &other),
                Err(o) => return o,
            }
        }
        match self.call(s, t, addr, &command(&["PING"]), "waiting for PONG").await {
            Ok(Reply::Simple(p)) if p == "PONG" => {}
            Ok(Reply::Error(e)) => return self.refused(t, &e, "PING"),
            Ok(other) => return self.unexpected(t, addr, "PING", &other),
            Err(o) => return o,
        }
        let latency = start.elapsed();
        // What a sentinel called the master must be one (not a replica in
        // the middle of a failover).
        if master {
            match self.call(s, t, addr, &command(&["ROLE"]), "asking its role").await {
                Ok(Reply::Array(a)) if a.first().and_then(Reply::text).as_deref() == Some("master") => {}
                Ok(Reply::Array(a)) => {
                    let role = a.first().and_then(Reply::text).unwrap_or_default();
                    return t.fail(
                        Class::Status,
                        format!(
                            "the sentinel named {addr} the master, but it answers ROLE as `{}` (a failover in progress?)",
                            bounded::cut(&role, 40)
                        ),
                    );
                }
                Ok(Reply::Error(e)) => return self.refused(t, &e, "ROLE"),
                Ok(other) => return self.unexpected(t, addr, "ROLE", &other),
                Err(o) => return o,
            }
        }
        let mut cluster = String::new();
        if self.cluster {
            match self
                .call(s, t, addr, &command(&["CLUSTER", "INFO"]), "asking CLUSTER INFO")
                .await
            {
                Ok(r @ Reply::Bulk(Some(_))) => {
                    let info = r.text().unwrap_or_default();
                    let field = |name: &str| {
                        info.lines()
                            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                            .map(|v| bounded::cut(v.trim(), 40))
                            .unwrap_or_else(|| "?".into())
                    };
                    let state = field("cluster_state");
                    let summary = format!(
                        "cluster_state:{state}, {} of 16384 slots assigned ({} ok), {} nodes, {} masters",
                        field("cluster_slots_assigned"),
                        field("cluster_slots_ok"),
                        field("cluster_known_nodes"),
                        field("cluster_size")
                    );
                    if state != "ok" {
                        return t.fail(Class::Status, format!("{addr}: {summary}"));
                    }
                    cluster = format!("; {summary}");
                }
                Ok(Reply::Error(e)) if e.contains("cluster support disabled") => {
                    return t.fail(
                        Class::Status,
                        format!("{addr} is not a cluster node (cluster support is disabled), but `cluster = true`"),
                    );
                }
                Ok(Reply::Error(e)) => return self.refused(t, &e, "CLUSTER INFO"),
                Ok(other) => return self.unexpected(t, addr, "CLUSTER INFO", &other),
                Err(o) => return o,
            }
        }
        let mut moved = 0;
        for key in &self.keys {
            let o = match self.call(s, t, addr, &command(&["EXISTS", key]), "checking keys").await {
                Ok(Reply::Int(n)) => self.exists(t, key, n, None),
                Ok(Reply::Error(e)) => match redirect(&e) {
                    Some((ask, host, port)) => {
                        moved += 1;
                        self.key_elsewhere(ctx, t, key, ask, host, port).await
                    }
                    None => self.refused(t, &e, "EXISTS"),
                },
                Ok(other) => self.unexpected(t, addr, "EXISTS", &other),
                Err(o) => o,
            };
            if o.verdict != super::Verdict::Pass {
                return o;
            }
        }
        if let Some(o) = service::over_latency(t, "connect, AUTH and PING", latency, self.max_latency) {
            return o;
        }
        let who = if t.user.is_empty() {
            String::new()
        } else {
            format!(" as `{}`", t.user)
        };
        let mut msg = format!(
            "PONG from {addr} in {}{who}, database {}{cluster}",
            service::took(start),
            self.db
        );
        if !self.keys.is_empty() {
            msg.push_str(&format!("; {} key(s) exist", self.keys.len()));
            if moved > 0 {
                msg.push_str(&format!(" ({moved} on other cluster nodes)"));
            }
        }
        Outcome::pass(msg)
    }

    /// EXISTS answered `n`: the key is there, or not.
    fn exists(&self, t: &Target, key: &str, n: i64, node: Option<&str>) -> Outcome {
        if n >= 1 {
            return Outcome::pass("");
        }
        let on = node.map(|n| format!(" (on cluster node {n})")).unwrap_or_default();
        t.fail(
            Class::NotFound,
            format!("key `{key}` does not exist in database {}{on}", self.db),
        )
        .about("keys", key)
    }

    /// A cluster node redirected `key`: ask the node that owns it (ASKING
    /// first for ASK), following at most [`MAX_HOPS`] redirects. Each node
    /// is dialed through the isolation guard.
    async fn key_elsewhere(&self, ctx: &Ctx, t: &Target, key: &str, ask: bool, host: String, port: u16) -> Outcome {
        let (mut ask, mut host, mut port) = (ask, host, port);
        for _ in 0..MAX_HOPS {
            let mut node = t.clone();
            node.host.clone_from(&host);
            node.port = port;
            let next = Mutex::new(None);
            let o = ctx
                .each_addr(&host, port, |addr| {
                    let (node, next) = (&node, &next);
                    async move {
                        let mut s = match service::open(ctx, node, &self.tls, addr, LIMIT).await {
                            Ok(s) => s,
                            Err(o) => return node.named(o),
                        };
                        if let Some(o) = self.auth(&mut s, node, addr).await {
                            return o;
                        }
                        if ask {
                            match self
                                .call(&mut s, node, addr, &command(&["ASKING"]), "sending ASKING")
                                .await
                            {
                                Ok(Reply::Simple(_)) => {}
                                Ok(Reply::Error(e)) => return self.refused(node, &e, "ASKING"),
                                Ok(other) => return self.unexpected(node, addr, "ASKING", &other),
                                Err(o) => return o,
                            }
                        }
                        match self
                            .call(&mut s, node, addr, &command(&["EXISTS", key]), "checking keys")
                            .await
                        {
                            Ok(Reply::Int(n)) => self.exists(node, key, n, Some(&addr.to_string())),
                            Ok(Reply::Error(e)) => match redirect(&e) {
                                Some(r) => {
                                    *next.lock().expect("no poisoning") = Some(r);
                                    Outcome::pass("")
                                }
                                None => self.refused(node, &e, "EXISTS"),
                            },
                            Ok(other) => self.unexpected(node, addr, "EXISTS", &other),
                            Err(o) => o,
                        }
                    }
                })
                .await;
            match next.into_inner().expect("no poisoning") {
                Some(r) if o.verdict == super::Verdict::Pass => (ask, host, port) = r,
                _ => return t.named(o),
            }
        }
        t.fail(
            Class::Protocol,
            format!("key `{key}`: more than {MAX_HOPS} cluster redirects (the cluster is resharding or misconfigured)"),
        )
        .about("keys", key)
    }

    async fn call<S>(&self, s: &mut S, t: &Target, addr: SocketAddr, cmd: &[u8], doing: &str) -> Result<Reply, Outcome>
    where
        S: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        s.write_all(cmd)
            .await
            .map_err(|e| service::io_error(t, addr, doing, &e))?;
        s.flush().await.map_err(|e| service::io_error(t, addr, doing, &e))?;
        read_reply(s).await.map_err(|e| service::io_error(t, addr, doing, &e))
    }

    /// An error reply: the credentials, the ACL or the server's state.
    fn refused(&self, t: &Target, e: &str, cmd: &str) -> Outcome {
        let code = e.split_whitespace().next().unwrap_or_default();
        let class = match code {
            "WRONGPASS" | "NOAUTH" => Class::Auth,
            "ERR" if e.contains("password") || e.contains("AUTH") => Class::Auth,
            "NOPERM" => Class::Permission,
            // LOADING, MASTERDOWN, BUSY: up, but not ready to serve.
            _ => Class::Status,
        };
        t.fail(class, format!("{cmd} answered: {}", bounded::cut(e, 200)))
    }

    fn unexpected(&self, t: &Target, addr: SocketAddr, cmd: &str, r: &Reply) -> Outcome {
        let seen = match r {
            Reply::Simple(s) => format!("+{}", bounded::cut(s, 80)),
            Reply::Error(e) => format!("-{}", bounded::cut(e, 80)),
            Reply::Int(i) => format!(":{i}"),
            Reply::Bulk(Some(b)) => format!("a {}-byte string", b.len()),
            Reply::Bulk(None) => "nil".into(),
            Reply::Array(a) => format!("an array of {}", a.len()),
        };
        t.fail(
            Class::Protocol,
            format!("{cmd} on {addr} answered {seen} (is this a Redis port?)"),
        )
    }
}

/// A command as a RESP array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_reply<R: AsyncBufRead + Unpin + Send>(r: &mut R) -> std::io::Result<Reply> {
    read_nested(r, 0).await
}

fn read_nested<'a, R: AsyncBufRead + Unpin + Send>(
    r: &'a mut R,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Reply>> + Send + 'a>> {
    Box::pin(read_one(r, depth))
}

async fn read_one<R: AsyncBufRead + Unpin + Send>(r: &mut R, depth: usize) -> std::io::Result<Reply> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let line = read_line(r, LINE).await?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let seen = || bounded::excerpt(&line, 40);
    Ok(match line.split_first() {
        Some((b'+', rest)) => Reply::Simple(text(rest)),
        Some((b'-', rest)) => Reply::Error(text(rest)),
        Some((b':', rest)) => {
            let n = match rest.split_first() {
                Some((b'-', digits)) => number(digits).and_then(|n| i64::try_from(n).ok()).map(|n| -n),
                _ => number(rest).and_then(|n| i64::try_from(n).ok()),
            };
            Reply::Int(n.ok_or_else(|| bad(format!("not an integer reply: {}", seen())))?)
        }
        Some((b'$' | b'*', b"-1")) => Reply::Bulk(None),
        Some((b'$', rest)) => {
            let n = number(rest).ok_or_else(|| bad(format!("not a bulk length: {}", seen())))?;
            let mut value = bounded::read_exact(r, "reply", n + 2, LINE as u64 + 2).await?;
            value.truncate(n as usize);
            Reply::Bulk(Some(value))
        }
        Some((b'*', rest)) => {
            let n = number(rest).ok_or_else(|| bad(format!("not an array length: {}", seen())))?;
            if n > ARRAY || depth >= DEPTH {
                return Err(bad(format!(
                    "an array of {n} elements at depth {depth} (at most {ARRAY}, {DEPTH} deep)"
                )));
            }
            let mut items = Vec::with_capacity(n as usize);
            for _ in 0..n {
                items.push(read_nested(r, depth + 1).await?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad(format!("not a RESP reply: {}", seen()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays() {
        assert_eq!(
            command(&["AUTH", "u", "p"]),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n"
        );
    }

    #[tokio::test]
    async fn replies_parse() {
        let mut r: &[u8] = b"+PONG\r\n-ERR no\r\n:3\r\n:-2\r\n$2\r\nab\r\n$-1\r\nHTTP/1.1 400\r\n";
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Simple(s) if s == "PONG"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Error(s) if s == "ERR no"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Int(3)));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Int(-2)));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(Some(b)) if b == b"ab"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(None)));
        assert_eq!(
            read_reply(&mut r).await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }

    #[tokio::test]
    async fn arrays_nest_within_their_bounds() {
        let mut r: &[u8] = b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n*-1\r\n";
        let Reply::Array(a) = read_reply(&mut r).await.unwrap() else {
            panic!("an array")
        };
        assert_eq!(a[0].text().as_deref(), Some("127.0.0.1"));
        assert_eq!(a[1].text().as_deref(), Some("6379"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(None)));
        let mut r: &[u8] = b"*5000\r\n";
        assert!(read_reply(&mut r).await.is_err());
        let mut r: &[u8] = b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n";
        assert!(read_reply(&mut r).await.unwrap_err().to_string().contains("deep"));
    }

    #[test]
    fn cluster_redirects_name_the_node() {
        assert_eq!(
            redirect("MOVED 3999 127.0.0.1:6381"),
            Some((false, "127.0.0.1".into(), 6381))
        );
        assert_eq!(redirect("ASK 1 10.0.0.2:7000"), Some((true, "10.0.0.2".into(), 7000)));
        assert_eq!(redirect("ERR unknown"), None);
    }

    #[tokio::test]
    async fn a_huge_bulk_length_is_refused_before_anything_is_read() {
        let mut r: &[u8] = b"$1094795585\r\nAAAA";
        let e = read_reply(&mut r).await.unwrap_err();
        assert!(e.to_string().contains("1094795587-byte reply"), "{e}");
        let mut r: &[u8] = "+\u{e9}t\u{e9}\r\n".as_bytes();
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Simple(s) if s == "\u{e9}t\u{e9}"));
    }
}
