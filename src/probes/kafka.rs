//! `kafka`: a Kafka cluster, asked what its clients will ask it. Each
//! bootstrap server is dialed, asked its API versions, authenticated (SASL
//! PLAIN or SCRAM-SHA-256/512, over TLS with a client certificate when
//! given) and asked for the cluster's metadata. Every topic in `topics` must
//! exist with at least `min_partitions` partitions, each with a leader that
//! is in the broker list; each leader is then dialed at the address it
//! advertises, because a broker advertising a name clients cannot reach is
//! the Kafka outage that metadata alone never shows. With `consumer_group`,
//! the group's committed offsets (from its coordinator) are compared with
//! each partition's latest offset (from its leader): the lag, held to
//! `max_lag`.
//!
//! Everything is read-only: metadata never creates a topic
//! (`allow_auto_topic_creation = false`), and offsets are fetched, never
//! committed. The messages are kafka-protocol's (the wire types generated
//! from Kafka's own schemas), framed over envgate's guarded connections, so
//! isolation admits every broker and coordinator before it is dialed and
//! every answer is bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetFetchRequest,
    OffsetFetchResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse, TopicName, list_offsets_request, metadata_request,
    offset_fetch_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::bounded::{self, Limited, Meter};
use super::param::Dur;
use super::service::{self, Ended, Io, Target, TlsOpts};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec, Verdict};
use crate::outcome::Metric;

pub static KIND: Kind = Kind {
    name: "kafka",
    doc: "a Kafka cluster answers metadata: topics exist with enough partitions and a reachable leader each; optionally a consumer group's lag",
    target: "bootstrap servers: kafka://[user:password@]host[:port][,host2:port] (kafka+ssl:// for TLS; user:password means SASL)",
    schemes: &["kafka", "kafka+ssl"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Topics that must exist, each partition with a leader that answers.
    #[serde(default)]
    topics: Vec<String>,
    /// Fewest partitions each of `topics` may have.
    min_partitions: Option<u32>,
    /// Fewest brokers the cluster may report.
    min_brokers: Option<u32>,
    /// A consumer group whose lag on `topics` is measured (committed offset against the latest).
    consumer_group: Option<String>,
    /// Most messages `consumer_group` may lag behind, summed over the partitions of `topics`.
    max_lag: Option<u64>,
    /// SASL mechanism for the URL's user and password: "PLAIN" (default), "SCRAM-SHA-256" or "SCRAM-SHA-512".
    sasl_mechanism: Option<String>,
    /// Slowest acceptable connect + authenticate + metadata round trip, e.g. "100ms".
    max_latency: Option<Dur>,
    /// TLS: PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// TLS: verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// TLS: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// TLS: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mechanism {
    Plain,
    Scram256,
    Scram512,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram256 => "SCRAM-SHA-256",
            Mechanism::Scram512 => "SCRAM-SHA-512",
        }
    }
}

struct Kafka {
    /// The bootstrap servers, in order.
    servers: Vec<Target>,
    topics: Vec<String>,
    min_partitions: Option<u32>,
    min_brokers: Option<u32>,
    group: Option<String>,
    max_lag: Option<u64>,
    /// Set when the URL names a user.
    sasl: Option<Mechanism>,
    max_latency: Option<Duration>,
    tls: TlsOpts,
}

const SCHEMES: &[(&str, u16, bool)] = &[("kafka", 9092, false), ("kafka+ssl", 9093, true)];

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let d: Params = spec.params()?;
    let servers = Target::parse_list("Kafka", spec.target, SCHEMES)?;
    let first = &servers[0];
    if let Some(t) = d.topics.iter().find(|t| !is_topic_name(t)) {
        return Err(ParamError::new(
            "topics",
            format!("`{t}` is not a Kafka topic name (1-249 of letters, digits, `.`, `_` and `-`)"),
        ));
    }
    let sasl = match (d.sasl_mechanism.as_deref(), first.user.is_empty()) {
        (Some(_), true) => {
            return Err(ParamError::new(
                "sasl_mechanism",
                "SASL needs a user and password in the target: kafka://user:password@host:9092",
            ));
        }
        (None, true) => None,
        (m, false) => Some(mechanism(m.unwrap_or("PLAIN"))?),
    };
    if sasl.is_some() && first.password.is_none() {
        return Err(ParamError::new(
            "target",
            format!(
                "SASL user `{}` has no password: kafka://user:password@host:9092",
                first.user
            ),
        ));
    }
    match (&d.consumer_group, d.max_lag) {
        (None, Some(_)) => {
            return Err(ParamError::new(
                "max_lag",
                "`max_lag` needs the `consumer_group` whose lag it bounds",
            ));
        }
        (Some(g), _) if g.trim().is_empty() => {
            return Err(ParamError::new("consumer_group", "the consumer group's name is empty"));
        }
        (Some(_), _) if d.topics.is_empty() => {
            return Err(ParamError::new(
                "consumer_group",
                "a consumer group's lag is measured on `topics`: name the topics it consumes",
            ));
        }
        _ => {}
    }
    if d.min_partitions.is_some() && d.topics.is_empty() {
        return Err(ParamError::new(
            "min_partitions",
            "`min_partitions` applies to `topics`: name them",
        ));
    }
    Ok(Box::new(Kafka {
        servers,
        topics: d.topics,
        min_partitions: d.min_partitions,
        min_brokers: d.min_brokers,
        group: d.consumer_group,
        max_lag: d.max_lag,
        sasl,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true)
            .with_client(super::certs::ClientCert::from_params(d.cert_file, d.key_file)?),
    }))
}

fn mechanism(m: &str) -> Result<Mechanism, ParamError> {
    match m.to_ascii_uppercase().as_str() {
        "PLAIN" => Ok(Mechanism::Plain),
        "SCRAM-SHA-256" => Ok(Mechanism::Scram256),
        "SCRAM-SHA-512" => Ok(Mechanism::Scram512),
        other => Err(ParamError::new(
            "sasl_mechanism",
            format!("`{other}` is not a SASL mechanism envgate speaks: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
        )),
    }
}

/// Kafka's own rule for topic names.
fn is_topic_name(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t != "."
        && t != ".."
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Probe for Kafka {
    fn hosts(&self) -> Vec<Endpoint> {
        self.servers.iter().map(Target::endpoint).collect()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(Target::each_server(
            ctx,
            &self.servers,
            "bootstrap servers",
            |t, addr| self.once(ctx, t, addr),
        ))
    }
}

/// What one connection may read in all, TLS handshake included, and one
/// answer at most (metadata for the named topics, offsets, versions).
const LIMIT: u64 = 8 << 20;
const FRAME: u64 = 4 << 20;
/// The most PBKDF2 rounds a SCRAM server may ask for (Kafka allows 16,384):
/// a hostile server cannot make the probe spin.
const MAX_ITERATIONS: u32 = 65_536;

/// The versions of each request envgate speaks, within what
/// kafka-protocol encodes; the highest the broker also speaks is used.
const METADATA: (i16, i16) = (4, 12);
const SASL_HANDSHAKE: (i16, i16) = (1, 1);
const SASL_AUTHENTICATE: (i16, i16) = (0, 2);
const FIND_COORDINATOR: (i16, i16) = (0, 4);
const OFFSET_FETCH: (i16, i16) = (1, 7);
const LIST_OFFSETS: (i16, i16) = (1, 7);
/// ApiVersions is asked at v3 (which names the client); a broker that does
/// not speak it answers in v0 with the versions it does.
const API_VERSIONS: i16 = 3;

/// A request envgate sends, with its API key and the answer it gets.
/// (kafka-protocol's own `Request` also wants the broker side's decoders.)
trait Request: Encodable + HeaderVersion + Message {
    const KEY: ApiKey;
    type Response: Decodable + HeaderVersion;
}

macro_rules! request {
    ($($req:ty => $resp:ty, $key:ident;)*) => {
        $(impl Request for $req {
            const KEY: ApiKey = ApiKey::$key;
            type Response = $resp;
        })*
    };
}

request! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    MetadataRequest => MetadataResponse, Metadata;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch;
    ListOffsetsRequest => ListOffsetsResponse, ListOffsets;
}

/// One authenticated connection to one broker.
struct Conn {
    s: Box<dyn Io>,
    addr: SocketAddr,
    /// The broker's name as dialed, for messages.
    at: String,
    next_id: i32,
    /// api key → (min, max) the broker speaks.
    apis: BTreeMap<i16, (i16, i16)>,
    presented: bool,
}

impl Conn {
    /// The highest version of `R` both sides speak.
    fn version<R: Request>(&self, t: &Target, ours: (i16, i16)) -> Result<i16, Outcome> {
        let name = format!("{:?}", R::KEY);
        let Some(&(min, max)) = self.apis.get(&(R::KEY as i16)) else {
            return Err(t.fail(Class::Protocol, format!("{} does not offer the {name} API", self.at)));
        };
        let (lo, hi) = (
            ours.0.max(min).max(R::VERSIONS.min),
            ours.1.min(max).min(R::VERSIONS.max),
        );
        if lo > hi {
            return Err(t.fail(
                Class::Protocol,
                format!(
                    "{} speaks {name} v{min}-v{max}; envgate speaks v{}-v{} (is the broker older than Kafka 1.0?)",
                    self.at, ours.0, ours.1
                ),
            ));
        }
        Ok(hi)
    }

    /// Send `req` at `version` and read its answer (bounded).
    async fn call<R: Request>(
        &mut self,
        t: &Target,
        req: &R,
        version: i16,
        doing: &str,
    ) -> Result<R::Response, Outcome> {
        let body = self.exchange(t, req, version, doing).await?;
        decode::<R::Response>(t, &self.at, body, version, doing)
    }

    /// The raw answer to `req`, its response header checked and removed.
    async fn exchange<R: Request>(
        &mut self,
        t: &Target,
        req: &R,
        version: i16,
        doing: &str,
    ) -> Result<BytesMut, Outcome> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY as i16;
        header.request_api_version = version;
        header.correlation_id = id;
        header.client_id = Some(StrBytes::from_static_str("envgate"));
        let mut frame = BytesMut::with_capacity(256);
        frame.extend_from_slice(&[0; 4]);
        let encoded = header
            .encode(&mut frame, R::header_version(version))
            .and_then(|()| req.encode(&mut frame, version));
        if let Err(e) = encoded {
            return Err(t.fail(
                Class::Protocol,
                format!("could not encode the {:?} request: {e}", R::KEY),
            ));
        }
        let len = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        if let Err(e) = self.s.write_all(&frame).await {
            return Err(self.io(t, doing, &e));
        }
        if let Err(e) = self.s.flush().await {
            return Err(self.io(t, doing, &e));
        }
        let mut size = [0u8; 4];
        if let Err(e) = self.s.read_exact(&mut size).await {
            return Err(self.io(t, doing, &e));
        }
        let n = i32::from_be_bytes(size);
        if n < 4 || n as u64 > FRAME {
            return Err(t.garbage(self.addr, doing, &size));
        }
        let body = match bounded::read_exact(&mut self.s, "answer", n as u64, FRAME).await {
            Ok(b) => b,
            Err(e) => return Err(self.io(t, doing, &e)),
        };
        let mut body = BytesMut::from(&body[..]);
        let answer = ResponseHeader::decode(&mut body, R::Response::header_version(version));
        match answer {
            Ok(h) if h.correlation_id == id => Ok(body),
            Ok(h) => Err(t.fail(
                Class::Protocol,
                format!(
                    "{} answered request {} while {doing}, expected {id}",
                    self.at, h.correlation_id
                ),
            )),
            Err(e) => Err(t.fail(
                Class::Protocol,
                format!("{} sent a malformed answer while {doing}: {e}", self.at),
            )),
        }
    }
}

impl Conn {
    /// An I/O error in the exchange; a TLS alert knows whether a client
    /// certificate was there to present.
    fn io(&self, t: &Target, doing: &str, e: &std::io::Error) -> Outcome {
        service::io_error_presenting(t, self.addr, doing, e, Some(self.presented))
    }
}

fn decode<M: Decodable>(t: &Target, at: &str, mut body: BytesMut, version: i16, doing: &str) -> Result<M, Outcome> {
    M::decode(&mut body, version).map_err(|e| {
        t.fail(
            Class::Protocol,
            format!("{at} sent an answer envgate cannot read while {doing}: {e} (is this a Kafka port?)"),
        )
    })
}

/// A Kafka error code as its name: "UnknownTopicOrPartition (3)".
fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e} ({code})"),
        None => "no error".into(),
    }
}

/// A broker the metadata names, as clients will dial it.
#[derive(Debug, Clone)]
struct Broker {
    id: i32,
    host: String,
    port: u16,
}

impl Broker {
    fn shown(&self) -> String {
        format!("broker {} ({}:{})", self.id, self.host, self.port)
    }
}

/// What the checks of one topic found.
struct TopicState {
    name: String,
    /// partition → leader id.
    leaders: Vec<(i32, i32)>,
}

impl Kafka {
    async fn once(&self, ctx: &Ctx, t: &Target, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        let mut c = match self.open(ctx, t, &t.host, addr).await {
            Ok(c) => c,
            Err(o) => return (o, None),
        };
        let o = self.check(ctx, t, &mut c, start).await;
        let goodbye = async move {
            let _ = c.s.shutdown().await;
        };
        (o, Some(Box::pin(goodbye)))
    }

    /// Dial, TLS, ApiVersions, SASL: a connection ready for requests.
    async fn open(&self, ctx: &Ctx, t: &Target, host: &str, addr: SocketAddr) -> Result<Conn, Outcome> {
        let tcp = Limited::new(ctx.connect(addr).await?, Meter::new(LIMIT));
        let s: Box<dyn Io> = if t.tls {
            service::tls(ctx, &self.tls, host, addr, tcp)
                .await
                .map_err(|o| t.named(o))?
        } else {
            Box::new(tcp)
        };
        let mut c = Conn {
            s,
            addr,
            at: addr.to_string(),
            next_id: 0,
            apis: BTreeMap::new(),
            presented: self.tls.client.is_some(),
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("envgate");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let body = c.exchange(t, &req, API_VERSIONS, "asking for API versions").await?;
        // A broker that does not speak v3 says so in v0, listing what it speaks.
        let answer =
            match decode::<ApiVersionsResponse>(t, &c.at, body.clone(), API_VERSIONS, "asking for API versions") {
                Ok(a) if a.error_code == 0 => a,
                _ => decode::<ApiVersionsResponse>(t, &c.at, body, 0, "asking for API versions")?,
            };
        if answer.error_code != 0 && answer.api_keys.is_empty() {
            return Err(t.fail(
                Class::Protocol,
                format!(
                    "{} refused the API versions request: {}",
                    c.at,
                    error_name(answer.error_code)
                ),
            ));
        }
        c.apis = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(m) = self.sasl {
            self.authenticate(t, &mut c, m).await?;
        }
        Ok(c)
    }

    /// A broker the metadata named, dialed at the address it advertises.
    async fn dial(&self, ctx: &Ctx, t: &Target, b: &Broker) -> Result<Conn, Outcome> {
        let ips = ctx.admitted(&b.host).await?;
        let mut last = None;
        for ip in ips {
            match self.open(ctx, t, &b.host, SocketAddr::new(ip, b.port)).await {
                Ok(mut c) => {
                    c.at = b.shown();
                    return Ok(c);
                }
                Err(o) => last = Some(o),
            }
        }
        Err(last.unwrap_or_else(|| t.fail(Class::Dns, format!("`{}` has no address", b.host))))
    }

    async fn authenticate(&self, t: &Target, c: &mut Conn, m: Mechanism) -> Result<(), Outcome> {
        let v = c.version::<SaslHandshakeRequest>(t, SASL_HANDSHAKE)?;
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str(m.name());
        let answer = c.call(t, &hs, v, "starting SASL").await.map_err(|o| {
            // Some brokers hang up instead of answering that they do not offer it.
            if o.class == Some(Class::Refused) {
                t.fail(
                    Class::Auth,
                    format!(
                        "{} closed the connection when asked for SASL {}: does it offer that mechanism? (`sasl_mechanism`)",
                        c.at,
                        m.name()
                    ),
                )
            } else {
                o
            }
        })?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            let offered = if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(", ")
            };
            return Err(t.fail(
                Class::Auth,
                format!(
                    "{} does not accept SASL {} ({}); it offers: {offered}",
                    c.at,
                    m.name(),
                    error_name(answer.error_code)
                ),
            ));
        }
        let v = c.version::<SaslAuthenticateRequest>(t, SASL_AUTHENTICATE)?;
        let password = t.password.as_deref().unwrap_or_default();
        match m {
            Mechanism::Plain => {
                let token = format!("\0{}\0{password}", t.user);
                self.sasl_step(t, c, v, token.into_bytes()).await?;
            }
            Mechanism::Scram256 | Mechanism::Scram512 => {
                let scram = scram::Exchange::start(m == Mechanism::Scram512, &t.user);
                let server_first = self.sasl_step(t, c, v, scram.first().into_bytes()).await?;
                let (last, expected) = scram
                    .last(&server_first, password, MAX_ITERATIONS)
                    .map_err(|why| t.fail(Class::Auth, format!("{} SCRAM: {why}", c.at)))?;
                let server_final = self.sasl_step(t, c, v, last.into_bytes()).await?;
                if let Some(e) = server_final.strip_prefix(b"e=") {
                    return Err(t.fail(
                        Class::Auth,
                        format!(
                            "{} refused user `{}` (SCRAM: {})",
                            c.at,
                            t.user,
                            bounded::cut(&String::from_utf8_lossy(e), 100)
                        ),
                    ));
                }
                if server_final != expected.as_bytes() {
                    return Err(t.fail(
                        Class::Auth,
                        format!(
                            "{} SCRAM: the server's signature does not prove it knows the password",
                            c.at
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round: the server's bytes back, or why not.
    async fn sasl_step(&self, t: &Target, c: &mut Conn, v: i16, bytes: Vec<u8>) -> Result<Vec<u8>, Outcome> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = bytes.into();
        let answer = c.call(t, &req, v, "authenticating").await?;
        if answer.error_code != 0 {
            let said = answer
                .error_message
                .as_ref()
                .map(|m| format!(": {}", bounded::cut(m.as_str(), 200)))
                .unwrap_or_default();
            return Err(t.fail(
                Class::Auth,
                format!(
                    "{} refused user `{}` ({}){said}",
                    c.at,
                    t.user,
                    error_name(answer.error_code)
                ),
            ));
        }
        Ok(answer.auth_bytes.to_vec())
    }

    async fn check(&self, ctx: &Ctx, t: &Target, c: &mut Conn, start: Instant) -> Outcome {
        match self.cluster(ctx, t, c, start).await {
            Ok(o) | Err(o) => o,
        }
    }

    async fn cluster(&self, ctx: &Ctx, t: &Target, c: &mut Conn, start: Instant) -> Result<Outcome, Outcome> {
        let meta = self.metadata(t, c).await?;
        let latency = start.elapsed();
        let brokers: Vec<Broker> = meta
            .brokers
            .iter()
            .map(|b| Broker {
                id: b.node_id.0,
                host: b.host.as_str().to_string(),
                port: u16::try_from(b.port).unwrap_or(0),
            })
            .collect();
        if let Some(min) = self.min_brokers
            && (brokers.len() as u64) < u64::from(min)
        {
            return Err(t.fail(
                Class::Capacity,
                format!(
                    "the cluster reports {} broker(s), expected at least {min}",
                    brokers.len()
                ),
            ));
        }
        let mut warnings = Vec::new();
        let mut topics = Vec::new();
        for name in &self.topics {
            topics.push(self.topic(t, &meta, &brokers, name, &mut warnings)?);
        }
        // Every leader at the address it advertises: what a producer dials next.
        let mut leaders: BTreeMap<i32, Conn> = BTreeMap::new();
        let ids: Vec<i32> = topics.iter().flat_map(|s| s.leaders.iter().map(|(_, l)| *l)).collect();
        for id in ids {
            if leaders.contains_key(&id) {
                continue;
            }
            // topic() saw every leader in the broker list.
            let Some(b) = brokers.iter().find(|b| b.id == id).cloned() else {
                continue;
            };
            let conn = self.dial(ctx, t, &b).await.map_err(|o| {
                let led: Vec<String> = topics
                    .iter()
                    .filter(|s| s.leaders.iter().any(|(_, l)| *l == id))
                    .map(|s| format!("`{}`", s.name))
                    .collect();
                advertised(t, &b, &led.join(", "), &o)
            })?;
            leaders.insert(id, conn);
        }
        let cluster = meta
            .cluster_id
            .as_ref()
            .map(|id| format!("cluster `{}`", bounded::cut(id.as_str(), 60)))
            .unwrap_or_else(|| "cluster".into());
        let mut msg = format!(
            "Kafka {cluster} via {}: {} broker(s) in {}",
            c.at,
            brokers.len(),
            service::ms(latency)
        );
        if !topics.is_empty() {
            let shown: Vec<String> = topics
                .iter()
                .map(|s| format!("`{}` ({} partitions)", s.name, s.leaders.len()))
                .collect();
            msg.push_str(&format!("; {}, every leader answers", shown.join(", ")));
        }
        let mut metrics = vec![Metric {
            name: "brokers".into(),
            value: brokers.len() as f64,
            unit: String::new(),
        }];
        if let Some(group) = &self.group {
            let lag = self.lag(ctx, t, c, &topics, &mut leaders, group).await?;
            metrics.push(Metric {
                name: "consumer_lag".into(),
                value: lag as f64,
                unit: String::new(),
            });
            msg.push_str(&format!("; group `{group}` lags {lag} message(s)"));
        }
        if let Some(o) = service::over_latency(t, "connect, authenticate and metadata", latency, self.max_latency) {
            return Err(o);
        }
        let o = match warnings.is_empty() {
            true => Outcome::pass(msg),
            false => {
                let mut w = t.fail(Class::Capacity, format!("{msg}; but {}", warnings.join("; ")));
                w.verdict = Verdict::Warn;
                w
            }
        };
        Ok(o.with_metrics(metrics))
    }

    async fn metadata(&self, t: &Target, c: &mut Conn) -> Result<MetadataResponse, Outcome> {
        let v = c.version::<MetadataRequest>(t, METADATA)?;
        let mut req = MetadataRequest::default();
        req.topics = Some(
            self.topics
                .iter()
                .map(|n| {
                    let mut topic = metadata_request::MetadataRequestTopic::default();
                    topic.name = Some(TopicName(StrBytes::from_string(n.clone())));
                    topic
                })
                .collect(),
        );
        // Asking must never create: a typo'd topic is reported, not made.
        req.allow_auto_topic_creation = false;
        c.call(t, &req, v, "asking for metadata").await.map_err(|o| {
            // Brokers answer ApiVersions before SASL and hang up on anything
            // else from a client that has not authenticated.
            if self.sasl.is_none() && o.class == Some(Class::Refused) {
                t.fail(
                    Class::Auth,
                    format!(
                        "{} closed the connection when asked for metadata without SASL: does it require authentication? (give the user and password in the URL, and `sasl_mechanism`)",
                        c.at
                    ),
                )
            } else {
                o
            }
        })
    }

    /// One topic of `topics`, checked against the metadata.
    fn topic(
        &self,
        t: &Target,
        meta: &MetadataResponse,
        brokers: &[Broker],
        name: &str,
        warnings: &mut Vec<String>,
    ) -> Result<TopicState, Outcome> {
        let fail = |class: Class, what: String| t.fail(class, what).about("topics", name);
        let Some(topic) = meta
            .topics
            .iter()
            .find(|x| x.name.as_ref().is_some_and(|n| n.0.as_str() == name))
        else {
            return Err(fail(
                Class::Protocol,
                format!("the metadata does not mention topic `{name}`"),
            ));
        };
        match topic.error_code {
            0 => {}
            3 => return Err(fail(Class::NotFound, format!("topic `{name}` does not exist"))),
            29 => {
                return Err(fail(
                    Class::Permission,
                    format!("user `{}` may not describe topic `{name}`", t.user),
                ));
            }
            code => {
                return Err(fail(
                    Class::Status,
                    format!("topic `{name}`: the broker answered {}", error_name(code)),
                ));
            }
        }
        let count = topic.partitions.len();
        if let Some(min) = self.min_partitions
            && (count as u64) < u64::from(min)
        {
            return Err(fail(
                Class::Capacity,
                format!("topic `{name}` has {count} partition(s), expected at least {min}"),
            ));
        }
        let mut leaders = Vec::new();
        for p in &topic.partitions {
            let i = p.partition_index;
            if p.error_code != 0 && p.error_code != 9 {
                return Err(fail(
                    Class::Status,
                    format!("topic `{name}` partition {i}: {}", error_name(p.error_code)),
                ));
            }
            let leader = p.leader_id.0;
            if leader < 0 {
                return Err(fail(
                    Class::Status,
                    format!("topic `{name}` partition {i} has no leader"),
                ));
            }
            if !brokers.iter().any(|b| b.id == leader) {
                return Err(fail(
                    Class::Status,
                    format!(
                        "topic `{name}` partition {i} is led by broker {leader}, which is not in the cluster's broker list"
                    ),
                ));
            }
            if p.isr_nodes.len() < p.replica_nodes.len() {
                warnings.push(format!(
                    "topic `{name}` partition {i} is under-replicated ({} of {} replicas in sync)",
                    p.isr_nodes.len(),
                    p.replica_nodes.len()
                ));
            }
            leaders.push((i, leader));
        }
        leaders.sort_unstable();
        Ok(TopicState {
            name: name.to_string(),
            leaders,
        })
    }

    /// The group's lag on `topics`: its committed offsets (asked of its
    /// coordinator) against each partition's latest (asked of its leader).
    async fn lag(
        &self,
        ctx: &Ctx,
        t: &Target,
        c: &mut Conn,
        topics: &[TopicState],
        leaders: &mut BTreeMap<i32, Conn>,
        group: &str,
    ) -> Result<u64, Outcome> {
        let coordinator = match self.coordinator(t, c, group).await {
            Ok(b) => b,
            Err(o) => return Err(o.about("consumer_group", group)),
        };
        let committed = {
            let mut own;
            let conn = match leaders.get_mut(&coordinator.id) {
                Some(conn) => conn,
                None => {
                    own = self
                        .dial(ctx, t, &coordinator)
                        .await
                        .map_err(|o| advertised(t, &coordinator, &format!("group `{group}`'s coordinator"), &o))?;
                    &mut own
                }
            };
            match self.committed(t, conn, topics, group).await {
                Ok(c) => c,
                Err(o) => return Err(o.about("consumer_group", group)),
            }
        };
        // Latest offsets, one request per leader.
        let mut latest: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (id, conn) in leaders.iter_mut() {
            let mut req = ListOffsetsRequest::default();
            req.replica_id = BrokerId(-1);
            req.topics = topics
                .iter()
                .filter(|s| s.leaders.iter().any(|(_, l)| l == id))
                .map(|s| {
                    let mut lt = list_offsets_request::ListOffsetsTopic::default();
                    lt.name = TopicName(StrBytes::from_string(s.name.clone()));
                    lt.partitions = s
                        .leaders
                        .iter()
                        .filter(|(_, l)| l == id)
                        .map(|(p, _)| {
                            let mut lp = list_offsets_request::ListOffsetsPartition::default();
                            lp.partition_index = *p;
                            lp.current_leader_epoch = -1;
                            // The latest offset.
                            lp.timestamp = -1;
                            lp
                        })
                        .collect();
                    lt
                })
                .collect();
            let v = conn.version::<ListOffsetsRequest>(t, LIST_OFFSETS)?;
            let answer = conn.call(t, &req, v, "asking for the latest offsets").await?;
            for topic in answer.topics {
                for p in topic.partitions {
                    if p.error_code != 0 {
                        return Err(t.fail(
                            Class::Status,
                            format!(
                                "{}: the latest offset of `{}` partition {}: {}",
                                conn.at,
                                topic.name.0.as_str(),
                                p.partition_index,
                                error_name(p.error_code)
                            ),
                        ));
                    }
                    latest.insert((topic.name.0.as_str().to_string(), p.partition_index), p.offset);
                }
            }
        }
        let mut total = 0u64;
        let mut never = Vec::new();
        let mut worst: Vec<(u64, String)> = Vec::new();
        for s in topics {
            for (p, _) in &s.leaders {
                let key = (s.name.clone(), *p);
                let end = latest.get(&key).copied().unwrap_or(0).max(0);
                match committed.get(&key).copied() {
                    Some(off) if off >= 0 => {
                        let lag = end.saturating_sub(off).max(0) as u64;
                        total = total.saturating_add(lag);
                        worst.push((lag, format!("`{}` partition {p} lags {lag}", s.name)));
                    }
                    _ => never.push(format!("`{}` partition {p}", s.name)),
                }
            }
        }
        if worst.is_empty() {
            return Err(t.fail(
                Class::NotFound,
                format!(
                    "consumer group `{group}` has committed no offset on {} (does the group exist, and does it consume these topics?)",
                    topics.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", ")
                ),
            )
            .about("consumer_group", group));
        }
        if let Some(max) = self.max_lag
            && total > max
        {
            worst.sort_by_key(|w| std::cmp::Reverse(w.0));
            let top: Vec<String> = worst.iter().take(3).map(|(_, s)| s.clone()).collect();
            let uncommitted = if never.is_empty() {
                String::new()
            } else {
                format!("; no offset committed on {}", never.join(", "))
            };
            return Err(t
                .fail(
                    Class::Capacity,
                    format!(
                        "consumer group `{group}` lags {total} message(s), expected at most {max}: {}{uncommitted}",
                        top.join(", ")
                    ),
                )
                .about("consumer_group", group));
        }
        Ok(total)
    }

    /// The broker coordinating `group`.
    async fn coordinator(&self, t: &Target, c: &mut Conn, group: &str) -> Result<Broker, Outcome> {
        let v = c.version::<FindCoordinatorRequest>(t, FIND_COORDINATOR)?;
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req.coordinator_keys = vec![StrBytes::from_string(group.to_string())];
        } else {
            req.key = StrBytes::from_string(group.to_string());
        }
        req.key_type = 0;
        let answer = c.call(t, &req, v, "finding the group's coordinator").await?;
        let (code, id, host, port) = match answer.coordinators.first() {
            Some(k) if v >= 4 => (k.error_code, k.node_id.0, k.host.as_str().to_string(), k.port),
            None if v >= 4 => {
                return Err(t.fail(Class::Protocol, format!("{} named no coordinator for `{group}`", c.at)));
            }
            _ => (
                answer.error_code,
                answer.node_id.0,
                answer.host.as_str().to_string(),
                answer.port,
            ),
        };
        if code != 0 {
            let class = if code == 30 { Class::Permission } else { Class::Status };
            return Err(t.fail(
                class,
                format!("finding consumer group `{group}`'s coordinator: {}", error_name(code)),
            ));
        }
        Ok(Broker {
            id,
            host,
            port: u16::try_from(port).unwrap_or(0),
        })
    }

    /// The group's committed offset per (topic, partition); -1 when none.
    async fn committed(
        &self,
        t: &Target,
        conn: &mut Conn,
        topics: &[TopicState],
        group: &str,
    ) -> Result<BTreeMap<(String, i32), i64>, Outcome> {
        let v = conn.version::<OffsetFetchRequest>(t, OFFSET_FETCH)?;
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(StrBytes::from_string(group.to_string()));
        req.topics = Some(
            topics
                .iter()
                .map(|s| {
                    let mut ot = offset_fetch_request::OffsetFetchRequestTopic::default();
                    ot.name = TopicName(StrBytes::from_string(s.name.clone()));
                    ot.partition_indexes = s.leaders.iter().map(|(p, _)| *p).collect();
                    ot
                })
                .collect(),
        );
        let answer = conn.call(t, &req, v, "fetching the group's offsets").await?;
        if answer.error_code != 0 {
            let class = if answer.error_code == 30 {
                Class::Permission
            } else {
                Class::Status
            };
            return Err(t.fail(
                class,
                format!(
                    "{}: offsets of group `{group}`: {}",
                    conn.at,
                    error_name(answer.error_code)
                ),
            ));
        }
        let mut out = BTreeMap::new();
        for topic in answer.topics {
            for p in topic.partitions {
                let off = if p.error_code == 0 { p.committed_offset } else { -1 };
                out.insert((topic.name.0.as_str().to_string(), p.partition_index), off);
            }
        }
        Ok(out)
    }
}

/// A broker named by the metadata that does not answer where it says it is.
fn advertised(t: &Target, b: &Broker, what: &str, o: &Outcome) -> Outcome {
    let class = o.class.unwrap_or(Class::Unknown);
    let why = o
        .message
        .strip_prefix(&format!("{}: ", class.as_str()))
        .unwrap_or(&o.message);
    t.fail(
        class,
        format!(
            "{}, leader of {what}, does not answer at the address it advertises (check its advertised.listeners): {why}",
            b.shown()
        ),
    )
}

/// SCRAM (RFC 5802) over SHA-256 or SHA-512, with ring's PBKDF2 and HMAC.
mod scram {
    use data_encoding::BASE64;
    use ring::rand::SecureRandom;
    use ring::{digest, hmac, pbkdf2};

    pub struct Exchange {
        sha512: bool,
        nonce: String,
        first_bare: String,
    }

    impl Exchange {
        pub fn start(sha512: bool, user: &str) -> Exchange {
            let mut raw = [0u8; 24];
            // The system RNG failing is not something a probe can recover from;
            // an all-zero nonce still authenticates, only less freshly.
            let _ = ring::rand::SystemRandom::new().fill(&mut raw);
            let nonce = BASE64.encode(&raw);
            let name = user.replace('=', "=3D").replace(',', "=2C");
            Exchange {
                sha512,
                first_bare: format!("n={name},r={nonce}"),
                nonce,
            }
        }

        /// The client-first message.
        pub fn first(&self) -> String {
            format!("n,,{}", self.first_bare)
        }

        /// The client-final message for the server-first one, and the
        /// server-final message a server that knows the password sends.
        pub fn last(
            &self,
            server_first: &[u8],
            password: &str,
            max_iterations: u32,
        ) -> Result<(String, String), String> {
            let text =
                std::str::from_utf8(server_first).map_err(|_| "the server's challenge is not text".to_string())?;
            if let Some(e) = text.strip_prefix("e=") {
                return Err(format!("the server refused: {}", super::bounded::cut(e, 100)));
            }
            let field = |k: &str| text.split(',').find_map(|f| f.strip_prefix(k));
            let (Some(nonce), Some(salt), Some(iterations)) = (field("r="), field("s="), field("i=")) else {
                return Err("the server's challenge lacks its nonce, salt or iteration count".into());
            };
            if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
                return Err("the server's nonce does not extend the client's".into());
            }
            let salt = BASE64
                .decode(salt.as_bytes())
                .map_err(|_| "the server's salt is not base64".to_string())?;
            let iterations: u32 = iterations
                .parse()
                .map_err(|_| "the server's iteration count is not a number".to_string())?;
            let rounds = match std::num::NonZeroU32::new(iterations) {
                Some(r) if iterations <= max_iterations => r,
                _ => {
                    return Err(format!(
                        "the server asks for {iterations} iterations (at most {max_iterations} are done)"
                    ));
                }
            };
            let (alg, mac, hash, len) = if self.sha512 {
                (pbkdf2::PBKDF2_HMAC_SHA512, hmac::HMAC_SHA512, &digest::SHA512, 64)
            } else {
                (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256, 32)
            };
            let mut salted = vec![0u8; len];
            pbkdf2::derive(alg, rounds, &salt, password.as_bytes(), &mut salted);
            let salted = hmac::Key::new(mac, &salted);
            let client_key = hmac::sign(&salted, b"Client Key");
            let stored_key = digest::digest(hash, client_key.as_ref());
            let without_proof = format!("c=biws,r={nonce}");
            let auth = format!("{},{text},{without_proof}", self.first_bare);
            let signature = hmac::sign(&hmac::Key::new(mac, stored_key.as_ref()), auth.as_bytes());
            let proof: Vec<u8> = client_key
                .as_ref()
                .iter()
                .zip(signature.as_ref())
                .map(|(a, b)| a ^ b)
                .collect();
            let server_key = hmac::sign(&salted, b"Server Key");
            let server_signature = hmac::sign(&hmac::Key::new(mac, server_key.as_ref()), auth.as_bytes());
            Ok((
                format!("{without_proof},p={}", BASE64.encode(&proof)),
                format!("v={}", BASE64.encode(server_signature.as_ref())),
            ))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// RFC 7677's SCRAM-SHA-256 example, with its fixed client nonce.
        #[test]
        fn scram_sha_256_matches_the_rfc_example() {
            let c = Exchange {
                sha512: false,
                nonce: "rOprNGfwEbeRWgbNEkqO".into(),
                first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            };
            let server_first =
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
            let (last, server_final) = c.last(server_first, "pencil", 65_536).unwrap();
            assert_eq!(
                last,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            );
            assert_eq!(server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        }

        #[test]
        fn a_server_asking_for_too_many_rounds_is_refused() {
            let c = Exchange::start(true, "app");
            let first = format!("r={}xyz,s=QSXCR+Q6sek8bf92,i=100000000", c.nonce);
            let e = c.last(first.as_bytes(), "pw", 65_536).unwrap_err();
            assert!(e.contains("100000000 iterations"), "{e}");
        }

        #[test]
        fn user_names_are_escaped() {
            assert!(Exchange::start(false, "a=b,c").first().starts_with("n,,n=a=3Db=2Cc,r="));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_with(target: &str, params: &str) -> Result<Box<dyn Probe>, ParamError> {
        let params: toml::Table = toml::from_str(params).unwrap();
        build(&Spec {
            target,
            params: &params,
        })
    }

    #[test]
    fn parameters_that_cannot_work_are_refused_before_anything_is_dialed() {
        let e = |t: &str, p: &str| build_with(t, p).err().map(|e| (e.param, e.message));
        assert_eq!(e("kafka://h:9092", "max_lag = 10").unwrap().0, "max_lag");
        assert_eq!(
            e("kafka://h:9092", "consumer_group = \"g\"").unwrap().0,
            "consumer_group"
        );
        assert_eq!(e("kafka://h:9092", "topics = [\"a b\"]").unwrap().0, "topics");
        assert_eq!(
            e("kafka://h:9092", "sasl_mechanism = \"PLAIN\"").unwrap().0,
            "sasl_mechanism"
        );
        assert_eq!(
            e("kafka://u:p@h:9092", "sasl_mechanism = \"GSSAPI\"").unwrap().0,
            "sasl_mechanism"
        );
        assert_eq!(e("kafka://u@h:9092", "").unwrap().0, "target");
        assert_eq!(e("http://h:9092", "").unwrap().0, "target");
        assert!(e("kafka://u:p@a:9092,b:9093", "topics = [\"orders.v1\"]").is_none());
    }

    #[test]
    fn every_bootstrap_server_is_a_host_isolation_checks() {
        let p = build_with("kafka+ssl://a.internal,b.internal:9094", "").unwrap();
        assert_eq!(
            p.hosts(),
            vec![Endpoint::new("a.internal", 9093), Endpoint::new("b.internal", 9094)]
        );
    }

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(is_topic_name("orders.v1_EU-2"));
        assert!(!is_topic_name(""));
        assert!(!is_topic_name(".."));
        assert!(!is_topic_name("a/b"));
        assert!(!is_topic_name(&"x".repeat(250)));
    }
}
