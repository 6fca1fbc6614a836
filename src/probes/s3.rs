//! `s3`: the bucket is reachable and listable (one key) with the
//! credentials a deployment has, under `prefix` when given; with
//! `write = true`, a canary object is put, read back and deleted (see
//! [`super::objects`]). Requests are signed by the `object_store` crate.
//! A `[probe.load]` GETs `load_object` with each request, or with
//! `write = true` puts, gets and deletes a canary of its own.
//!
//! Credentials, first found wins, as the AWS SDKs look for them:
//! 1. `access_key`/`secret_key` (and `session_token`), or the target URL's
//!    user and password;
//! 2. `anonymous = true`: unsigned requests (a public bucket);
//! 3. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 4. the profile (`profile`, else `AWS_PROFILE`, else `default`) of the
//!    shared files (`AWS_SHARED_CREDENTIALS_FILE` or ~/.aws/credentials,
//!    `AWS_CONFIG_FILE` or ~/.aws/config): its keys, its
//!    `web_identity_token_file` and `role_arn`, or its `credential_process`;
//! 5. web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`: EKS
//!    IRSA, GitHub OIDC), through STS `AssumeRoleWithWebIdentity`;
//! 6. ECS container credentials, then EKS Pod Identity
//!    (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`);
//! 7. the EC2 instance profile through IMDSv2.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use url::Url;

use super::load::Load;
use super::net::ClientOpts;
use super::objects::{self, Check, Connector, Dialect, LoadOp, ObjectLoad, Opened, Refusal, Seen, Transport, Words};
use super::param::Dur;
use super::service::Target;
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "s3",
    doc: "an S3 bucket is reachable and listable with the deployment's AWS credentials; optionally a canary write",
    target: "s3://bucket[/prefix] (AWS, or any S3 API with `endpoint`), or http(s)://endpoint/bucket[/prefix] (path style)",
    schemes: &["s3"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// S3 API endpoint for s3:// targets: MinIO, Ceph, R2... (default https://s3.REGION.amazonaws.com).
    endpoint: Option<String>,
    /// The bucket, when the target does not name it.
    bucket: Option<String>,
    /// The bucket's region (default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).
    region: Option<String>,
    /// "virtual" (bucket.endpoint) or "path" (endpoint/bucket); default virtual on AWS, path elsewhere.
    addressing: Option<String>,
    /// Access key id, e.g. "${storage.access_key}" (default: the target URL's user, then the AWS credential chain).
    access_key: Option<String>,
    /// Secret access key, e.g. "${storage.secret_key}" (default: the target URL's password).
    secret_key: Option<String>,
    /// Session token of temporary keys, e.g. "${secret:env:AWS_SESSION_TOKEN}".
    session_token: Option<String>,
    /// The shared config profile to take credentials from (default AWS_PROFILE, else "default").
    profile: Option<String>,
    /// Send unsigned requests, for a public bucket (default false).
    anonymous: Option<bool>,
    /// A key prefix that must be listable; canary objects go under it.
    prefix: Option<String>,
    /// Put, get and delete a small canary object under the prefix (default false).
    write: Option<bool>,
    /// With `[probe.load]`: each request GETs this object, its key after the prefix (prefix "app/" and "health/ping.txt" make app/health/ping.txt), also with `write = true`. A load needs this or `write = true`.
    load_object: Option<String>,
    /// With `[probe.load]`, `write = true` and no `load_object`: each request puts, gets and deletes a canary of this size, e.g. "4KiB" (default 1KiB, at most 256KiB).
    load_object_size: Option<String>,
    /// Slowest acceptable list, put or get, e.g. "300ms".
    max_latency: Option<Dur>,
    /// PEM file of the CA roots to trust instead of the system's (also for STS).
    ca_file: Option<String>,
    /// Verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
}

#[derive(Clone)]
struct S3 {
    t: Target,
    /// The URL the store's requests go to: the bucket's (virtual) or the
    /// endpoint's with the bucket as the first path segment (path).
    base: Url,
    virtual_hosted: bool,
    bucket: String,
    region: String,
    keys: Option<(String, String, Option<String>)>,
    profile: Option<String>,
    anonymous: bool,
    prefix: String,
    write: bool,
    /// What each request of a `[probe.load]` does.
    load: Option<LoadOp>,
    max_latency: Option<Duration>,
    opts: ClientOpts,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    Ok(Box::new(parse(spec)?))
}

fn parse(spec: &Spec<'_>) -> Result<S3, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let parsed = Target::parse(
        "S3",
        target,
        &[("s3", 443, true), ("https", 443, true), ("http", 80, false)],
    )?;
    let region = d
        .region
        .clone()
        .or_else(|| parsed.query("region"))
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".into());
    let path = parsed.path();
    let (endpoint, bucket, prefix) = if parsed.url.scheme() == "s3" {
        let ep = d.endpoint.clone().or_else(|| parsed.query("endpoint"));
        (ep, parsed.host.clone(), path)
    } else {
        let mut base = parsed.url.clone();
        base.set_path("");
        base.set_query(None);
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let (b, p) = path
            .split_once('/')
            .map_or((path.clone(), String::new()), |(b, p)| (b.to_string(), p.to_string()));
        (Some(base.as_str().trim_end_matches('/').to_string()), b, p)
    };
    let endpoint = match endpoint {
        Some(e) => {
            let u = Url::parse(&e).map_err(|err| ParamError::new("endpoint", format!("`{e}` is not a URL: {err}")))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(ParamError::new(
                    "endpoint",
                    format!("`{e}` is not an http:// or https:// endpoint"),
                ));
            }
            Some(u)
        }
        None => None,
    };
    let bucket = d.bucket.clone().unwrap_or(bucket);
    if bucket.is_empty() || bucket.contains('/') {
        return Err(ParamError::new(
            "bucket",
            format!(
                "`{}` names no bucket: write endpoint/bucket or set `bucket`",
                parsed.shown
            ),
        ));
    }
    let virtual_hosted = match d.addressing.as_deref() {
        Some("virtual") => true,
        Some("path") => false,
        Some(other) => {
            return Err(ParamError::new(
                "addressing",
                format!("`{other}` is not an addressing style: write \"virtual\" or \"path\""),
            ));
        }
        // AWS's own endpoint: virtual-hosted, unless a dot in the name
        // would not match the certificate's wildcard.
        None => endpoint.is_none() && !bucket.contains('.'),
    };
    let base = match (&endpoint, virtual_hosted) {
        (Some(e), false) => e.clone(),
        (Some(e), true) => {
            let mut u = e.clone();
            let host = format!("{bucket}.{}", e.host_str().unwrap_or_default());
            u.set_host(Some(&host))
                .map_err(|err| ParamError::new("bucket", format!("`{host}` is not a host name: {err}")))?;
            u
        }
        (None, true) => Url::parse(&format!("https://{bucket}.s3.{region}.amazonaws.com"))
            .map_err(|e| ParamError::new("bucket", format!("`{bucket}` cannot be a host name: {e}")))?,
        (None, false) => Url::parse(&format!("https://s3.{region}.amazonaws.com"))
            .map_err(|e| ParamError::new("region", format!("`{region}` cannot be in a host name: {e}")))?,
    };
    let prefix = d.prefix.clone().unwrap_or(prefix);
    let access = d
        .access_key
        .clone()
        .or_else(|| (!parsed.user.is_empty()).then(|| parsed.user.clone()));
    let secret = d.secret_key.clone().or_else(|| parsed.password.clone());
    let keys = match (access, secret) {
        (Some(a), Some(s)) => Some((a, s, d.session_token.clone())),
        (None, None) if d.session_token.is_some() => {
            return Err(ParamError::new(
                "session_token",
                "a session token needs `access_key` and `secret_key`",
            ));
        }
        (None, None) => None,
        (Some(_), None) => return Err(ParamError::new("secret_key", "an access key needs its `secret_key`")),
        (None, Some(_)) => return Err(ParamError::new("access_key", "a secret key needs its `access_key`")),
    };
    let anonymous = d.anonymous.unwrap_or(false);
    if anonymous && (keys.is_some() || d.profile.is_some()) {
        return Err(ParamError::new(
            "anonymous",
            "anonymous requests carry no credentials: drop the keys or the profile, or `anonymous`",
        ));
    }
    let write = d.write.unwrap_or(false);
    let load = objects::load_op(&prefix, d.load_object.as_deref(), d.load_object_size.as_deref(), write)?;
    let host = base.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
    let t = Target {
        component: "S3",
        host,
        port: base.port_or_known_default().unwrap_or(443),
        user: keys.as_ref().map(|k| k.0.clone()).unwrap_or_default(),
        password: keys.as_ref().map(|k| k.1.clone()),
        shown: parsed.shown.clone(),
        tls: base.scheme() == "https",
        tls_hint: "use an https:// endpoint".into(),
        url: parsed.url,
    };
    Ok(S3 {
        t,
        base,
        virtual_hosted,
        bucket,
        region,
        keys,
        profile: d.profile,
        anonymous,
        prefix,
        write,
        load,
        max_latency: d.max_latency.map(|m| m.0),
        opts: ClientOpts {
            follow_redirects: false,
            ca_file: d.ca_file,
            verify: d.tls_verify.unwrap_or(true),
            client: None,
        },
    })
}

impl Probe for S3 {
    /// The host requests go to, whatever the target looked like (the
    /// bucket's virtual host, an endpoint, the region's AWS endpoint).
    /// Credential endpoints (STS, metadata services) are checked by the
    /// transport as they are asked.
    fn hosts(&self) -> Vec<Endpoint> {
        vec![objects::endpoint_of(&self.base)]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let creds = match self.creds(ctx).await {
                Ok(c) => c,
                Err(o) => return o,
            };
            self.t.each_addr(ctx, |addr| self.once(ctx, addr, &creds)).await
        })
    }

    fn load(&self) -> Option<Arc<dyn Load>> {
        let op = self.load.clone()?;
        let s3 = self.clone();
        let explain: objects::Explain = Box::new(move |seen: &Seen| s3.region_mismatch(seen));
        Some(Arc::new(ObjectLoad::new(
            Arc::new(Opener {
                s3: self.clone(),
                creds: tokio::sync::OnceCell::new(),
            }),
            objects::endpoint_of(&self.base),
            self.t.clone(),
            &Aws,
            self.bucket.clone(),
            self.prefix.clone(),
            op,
            explain,
        )))
    }
}

/// A load's workers' S3 clients; the credentials are found once, by the
/// first worker, and shared.
struct Opener {
    s3: S3,
    creds: tokio::sync::OnceCell<Arc<Creds>>,
}

impl objects::Opener for Opener {
    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Opened, Outcome>> {
        Box::pin(async move {
            let creds = self
                .creds
                .get_or_try_init(|| async { self.s3.creds(ctx).await.map(Arc::new) })
                .await?;
            let (store, transport) = self.s3.client(ctx, addr, creds, true)?;
            Ok(Opened {
                store: Arc::new(store),
                transport,
                credentials: creds.from().to_string(),
            })
        })
    }
}

/// Where the credentials come from, found at run time (files and
/// environment variables are read then, not when the checks are loaded).
enum Creds {
    Static {
        key: String,
        secret: String,
        token: Option<String>,
        from: String,
    },
    Anonymous,
    /// object_store's chain, with these settings (web identity from a
    /// profile or the environment, container credentials, IMDSv2).
    Chain {
        config: Vec<(AmazonS3ConfigKey, String)>,
        from: String,
    },
}

/// Environment variables the credential chain reads (the rest of `AWS_*`,
/// an endpoint or a region, is the probe's parameters' to say).
const CHAIN_ENV: &[&str] = &[
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_METADATA_ENDPOINT",
    "AWS_IMDSV1_FALLBACK",
];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Creds {
    fn find(
        keys: Option<(String, String, Option<String>)>,
        anonymous: bool,
        profile: Option<&str>,
        timeout: Duration,
    ) -> Result<Creds, String> {
        if let Some((key, secret, token)) = keys {
            let from = format!("access key `{key}`");
            return Ok(Creds::Static {
                key,
                secret,
                token,
                from,
            });
        }
        if anonymous {
            return Ok(Creds::Anonymous);
        }
        if profile.is_none()
            && let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        {
            let from = format!("access key `{key}` from AWS_ACCESS_KEY_ID");
            return Ok(Creds::Static {
                key,
                secret,
                token: env("AWS_SESSION_TOKEN"),
                from,
            });
        }
        let named = profile.map(String::from).or_else(|| env("AWS_PROFILE"));
        if let Some(c) = Profiles::read()?.credentials(named.as_deref(), timeout)? {
            return Ok(c);
        }
        let config: Vec<(AmazonS3ConfigKey, String)> = CHAIN_ENV
            .iter()
            .filter_map(|k| Some((k.to_ascii_lowercase().parse().ok()?, env(k)?)))
            .collect();
        let from = if let (Some(_), Some(role)) = (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN")) {
            format!("web identity for role `{role}` (AWS_WEB_IDENTITY_TOKEN_FILE)")
        } else if env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some() {
            "ECS container credentials".to_string()
        } else if env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() {
            "EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)".to_string()
        } else if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(
                "no AWS credentials: none in the configuration, AWS_ACCESS_KEY_ID, a shared credentials \
                 profile, web identity or container credentials, and AWS_EC2_METADATA_DISABLED=true rules out \
                 the instance profile"
                    .into(),
            );
        } else {
            "the EC2 instance profile through IMDSv2, the chain's last resort".to_string()
        };
        Ok(Creds::Chain { config, from })
    }

    fn from(&self) -> &str {
        match self {
            Creds::Static { from, .. } | Creds::Chain { from, .. } => from,
            Creds::Anonymous => "anonymous",
        }
    }
}

/// The shared config and credentials files, by profile name.
struct Profiles {
    /// `[name]` of the credentials file.
    credentials: HashMap<String, HashMap<String, String>>,
    /// `[profile name]` (or `[default]`) of the config file.
    config: HashMap<String, HashMap<String, String>>,
    files: String,
}

impl Profiles {
    fn read() -> Result<Profiles, String> {
        let home = env("HOME").unwrap_or_default();
        let cred_path = env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| format!("{home}/.aws/credentials"));
        let conf_path = env("AWS_CONFIG_FILE").unwrap_or_else(|| format!("{home}/.aws/config"));
        let load = |path: &str| -> Result<HashMap<String, HashMap<String, String>>, String> {
            match std::fs::metadata(path) {
                Err(_) => Ok(HashMap::new()),
                Ok(m) if m.len() > 1 << 20 => Err(format!("{path} is larger than 1 MiB: not an AWS config file")),
                Ok(_) => std::fs::read_to_string(path)
                    .map(|t| ini(&t))
                    .map_err(|e| format!("cannot read {path}: {e}")),
            }
        };
        let credentials = load(&cred_path)?;
        let config = load(&conf_path)?
            .into_iter()
            .filter_map(|(k, v)| {
                let name = if k == "default" {
                    k
                } else {
                    k.strip_prefix("profile ")?.trim().to_string()
                };
                Some((name, v))
            })
            .collect();
        Ok(Profiles {
            credentials,
            config,
            files: format!("{cred_path} or {conf_path}"),
        })
    }

    /// The named profile's credentials; `None` when no profile was named
    /// and the files have no `default`.
    fn credentials(&self, named: Option<&str>, timeout: Duration) -> Result<Option<Creds>, String> {
        let name = named.unwrap_or("default");
        let mut p: HashMap<String, String> = self.config.get(name).cloned().unwrap_or_default();
        if let Some(c) = self.credentials.get(name) {
            p.extend(c.clone());
        }
        if p.is_empty() {
            return match named {
                Some(n) => Err(format!("profile `{n}` is in neither {}", self.files)),
                None => Ok(None),
            };
        }
        let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
        if let (Some(key), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
            let from = format!("access key `{key}` of profile `{name}`");
            return Ok(Some(Creds::Static {
                key,
                secret,
                token: get("aws_session_token"),
                from,
            }));
        }
        if let (Some(file), Some(role)) = (get("web_identity_token_file"), get("role_arn")) {
            let mut config = vec![
                (AmazonS3ConfigKey::WebIdentityTokenFile, file),
                (AmazonS3ConfigKey::RoleArn, role.clone()),
            ];
            if let Some(s) = get("role_session_name") {
                config.push((AmazonS3ConfigKey::RoleSessionName, s));
            }
            if let Some(e) = env("AWS_ENDPOINT_URL_STS").or_else(|| get("endpoint_url_sts")) {
                config.push((AmazonS3ConfigKey::StsEndpoint, e));
            }
            return Ok(Some(Creds::Chain {
                config,
                from: format!("web identity for role `{role}` of profile `{name}`"),
            }));
        }
        if let Some(cmd) = get("credential_process") {
            return process_credentials(name, &cmd, timeout).map(Some);
        }
        if get("role_arn").is_some() {
            return Err(format!(
                "profile `{name}` assumes a role from `source_profile` or `credential_source`, which envgate does not do: \
                 give the probe that role's keys, or set `credential_process = aws configure export-credentials --profile {name} --format process`"
            ));
        }
        if get("sso_session").is_some() || get("sso_start_url").is_some() {
            return Err(format!(
                "profile `{name}` signs in through IAM Identity Center (SSO), which envgate does not do: \
                 set `credential_process = aws configure export-credentials --profile {name} --format process` in a profile of its own"
            ));
        }
        Err(format!(
            "profile `{name}` has no aws_access_key_id and aws_secret_access_key, web_identity_token_file and role_arn, or credential_process"
        ))
    }
}

/// A `credential_process`: run without a shell; its JSON answer's keys.
fn process_credentials(name: &str, cmd: &str, timeout: Duration) -> Result<Creds, String> {
    let argv =
        crate::config::command::split(cmd).map_err(|e| format!("the credential_process of profile `{name}` {e}"))?;
    let out = crate::config::command::run(&argv, timeout)
        .map_err(|e| format!("the credential_process of profile `{name}`: {e}"))?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    }
    let a: Answer = serde_json::from_str(&out).map_err(|e| {
        // Its output is a secret: only where it stopped making sense.
        format!(
            "the credential_process of profile `{name}` (`{}`) did not print AccessKeyId and SecretAccessKey as JSON (line {}, column {})",
            argv.join(" "),
            e.line(),
            e.column()
        )
    })?;
    Ok(Creds::Static {
        from: format!(
            "access key `{}` from the credential_process of profile `{name}`",
            a.access_key_id
        ),
        key: a.access_key_id,
        secret: a.secret_access_key,
        token: a.session_token,
    })
}

/// An INI file's sections: `[name]` then `key = value` lines; comments
/// start with `#` or `;`; indented lines (nested settings) are skipped.
fn ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let l = line.trim();
        if l.is_empty() || l.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, l.split_once('=')) {
            out.entry(s.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

struct Aws;

impl Dialect for Aws {
    fn noun(&self) -> &'static str {
        "bucket"
    }

    fn classify(&self, r: &Refusal) -> Class {
        match (r.status, r.code().as_str()) {
            (_, "NoSuchBucket" | "NoSuchKey") | (404, "") => Class::NotFound,
            (
                _,
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "TokenRefreshRequired"
                | "InvalidClientTokenId",
            )
            | (401, _) => Class::Auth,
            (_, "AccessDenied" | "AllAccessDisabled" | "AccountProblem") | (403, "") => Class::Permission,
            _ => Class::Status,
        }
    }

    fn credential_source(&self, host: &str) -> String {
        match host {
            "169.254.169.254" | "fd00:ec2::254" => format!("the EC2 instance metadata service (IMDSv2, {host})"),
            "169.254.170.2" => "the ECS container credentials endpoint (169.254.170.2)".to_string(),
            "169.254.170.23" | "fd00:ec2::23" => format!("the EKS Pod Identity agent ({host})"),
            h if h.starts_with("sts.") => format!("STS ({h})"),
            h => format!("the credentials endpoint {h}"),
        }
    }
}

impl S3 {
    /// The URL every request about the bucket starts with.
    fn store_url(&self) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        if self.virtual_hosted {
            base.to_string()
        } else {
            format!("{base}/{}", self.bucket)
        }
    }

    /// The credentials, found at run time (files, a `credential_process`:
    /// off the runtime's threads).
    async fn creds(&self, ctx: &Ctx) -> Result<Creds, Outcome> {
        match tokio::task::spawn_blocking({
            let profile = self.profile.clone();
            let keys = self.keys.clone();
            let anonymous = self.anonymous;
            let timeout = ctx.timeout;
            move || Creds::find(keys, anonymous, profile.as_deref(), timeout)
        })
        .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.t.fail(Class::Auth, e)),
            Err(e) => Err(self.t.fail(Class::Auth, format!("looking for credentials failed: {e}"))),
        }
    }

    /// A client of the bucket over the guarded transport to `addr`
    /// (pooled for a load).
    fn client(
        &self,
        ctx: &Ctx,
        addr: SocketAddr,
        creds: &Creds,
        load: bool,
    ) -> Result<(object_store::aws::AmazonS3, Transport), Outcome> {
        let transport = if load {
            Transport::for_load(ctx, &self.opts, &self.store_url(), &self.t.host, addr)
        } else {
            Transport::new(ctx, &self.opts, &self.store_url(), &self.t.host, addr)
        }
        .map_err(|o| self.t.named(o))?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_virtual_hosted_style_request(self.virtual_hosted)
            .with_allow_http(self.base.scheme() == "http")
            .with_retry(objects::retry(ctx.timeout))
            .with_http_connector(Connector(transport.clone()));
        // object_store takes a virtual-hosted endpoint with the bucket in it.
        let endpoint = self.base.as_str().trim_end_matches('/').to_string();
        b = b.with_endpoint(endpoint);
        b = match creds {
            Creds::Static { key, secret, token, .. } => {
                let b = b.with_access_key_id(key).with_secret_access_key(secret);
                match token {
                    Some(t) => b.with_token(t),
                    None => b,
                }
            }
            Creds::Anonymous => b.with_skip_signature(true),
            Creds::Chain { config, .. } => config.iter().fold(b, |b, (k, v)| b.with_config(*k, v)),
        };
        let store = b.build().map_err(|e| {
            self.t.fail(
                Class::Auth,
                format!("cannot set up the S3 client ({}): {}", creds.from(), objects::chain(&e)),
            )
        })?;
        Ok((store, transport))
    }

    async fn once(&self, ctx: &Ctx, addr: SocketAddr, creds: &Creds) -> Outcome {
        let (store, transport) = match self.client(ctx, addr, creds, false) {
            Ok(c) => c,
            Err(o) => return o,
        };
        let explain = |seen: &Seen| self.region_mismatch(seen);
        Check {
            words: Words {
                t: &self.t,
                dialect: &Aws,
                transport: &transport,
                container: &self.bucket,
                credentials: creds.from(),
                explain: &explain,
            },
            store: Arc::new(store),
            prefix: &self.prefix,
            write: self.write,
            max_latency: self.max_latency,
        }
        .run()
        .await
    }

    /// A bucket in another region than the one signed for: S3 says so with
    /// `x-amz-bucket-region`, a `PermanentRedirect`, or an
    /// `AuthorizationHeaderMalformed` naming the region it expected.
    fn region_mismatch(&self, seen: &Seen) -> Option<Outcome> {
        let r = seen.refused.as_ref();
        let from_body = r.and_then(|r| {
            objects::between(&r.body, "<Region>", "</Region>")
                .or_else(|| objects::between(&r.body, "<BucketRegion>", "</BucketRegion>"))
                .map(String::from)
        });
        let actual = seen.bucket_region.clone().or(from_body)?;
        if actual == self.region || seen.failed.is_none() && r.is_none() {
            return None;
        }
        Some(self.t.fail(
            Class::Status,
            format!(
                "bucket `{}` is in region `{actual}`, not `{}`: set `region = \"{actual}\"`",
                self.bucket, self.region
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(target: &str, params: &str) -> Result<Box<dyn Probe>, ParamError> {
        let params: toml::Table = toml::from_str(params).unwrap();
        build(&Spec {
            target,
            params: &params,
        })
    }

    fn host(target: &str, params: &str) -> String {
        probe(target, params)
            .unwrap_or_else(|e| panic!("{}", e.message))
            .hosts()[0]
            .host
            .clone()
    }

    #[test]
    fn addressing_style_decides_the_host_dialed() {
        assert_eq!(
            host("s3://orders/app-", "region = \"eu-west-1\""),
            "orders.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            host("s3://orders", "region = \"eu-west-1\"\naddressing = \"path\""),
            "s3.eu-west-1.amazonaws.com"
        );
        // A dot in the name does not fit the certificate's wildcard.
        assert_eq!(host("s3://a.b", "region = \"eu-west-1\""), "s3.eu-west-1.amazonaws.com");
        assert_eq!(
            host("s3://orders", "endpoint = \"http://minio.internal:9000\""),
            "minio.internal"
        );
        assert_eq!(
            host(
                "s3://orders",
                "endpoint = \"http://minio.internal:9000\"\naddressing = \"virtual\""
            ),
            "orders.minio.internal"
        );
        assert_eq!(host("http://10.0.0.7:9000/orders/app-", ""), "10.0.0.7");
        let e = probe("s3://orders", "addressing = \"sideways\"").err().unwrap();
        assert_eq!(e.param, "addressing");
        let e = probe(
            "s3://orders",
            "anonymous = true\naccess_key = \"a\"\nsecret_key = \"b\"",
        )
        .err()
        .unwrap();
        assert_eq!(e.param, "anonymous");
    }

    #[test]
    fn a_bucket_in_another_region_is_reported_as_such() {
        let params: toml::Table = toml::from_str("region = \"us-east-1\"").unwrap();
        let p = parse(&Spec {
            target: "s3://orders",
            params: &params,
        })
        .unwrap();
        // S3's answer to a request signed for the wrong region.
        let seen = Seen {
            refused: Some(Refusal {
                host: "orders.s3.us-east-1.amazonaws.com".into(),
                credential: false,
                status: 400,
                body: "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>".into(),
            }),
            ..Seen::default()
        };
        let o = p.region_mismatch(&seen).unwrap();
        assert!(
            o.message
                .starts_with("status: S3 s3://orders: bucket `orders` is in region `eu-west-1`, not `us-east-1`: set `region = \"eu-west-1\"`"),
            "{}",
            o.message
        );
        let seen = Seen {
            bucket_region: Some("us-east-1".into()),
            ..Seen::default()
        };
        assert!(p.region_mismatch(&seen).is_none());
    }

    #[test]
    fn shared_config_files_are_read_by_profile() {
        let text = "[default]\naws_access_key_id = AKIADEFAULT\n# comment\n[profile ci]\nregion = eu-west-1\ns3 =\n  addressing_style = path\n";
        let m = ini(text);
        assert_eq!(m["default"]["aws_access_key_id"], "AKIADEFAULT");
        assert_eq!(m["profile ci"]["region"], "eu-west-1");
        assert!(!m["profile ci"].contains_key("addressing_style"));
    }
}
