//! `gcs`: a Google Cloud Storage bucket is reachable and listable (one
//! object) with the deployment's credentials, under `prefix` when given;
//! with `write = true`, a canary object is put, read back and deleted (see
//! [`super::objects`]). Requests go to the XML API, signed by the
//! `object_store` crate. A `[probe.load]` GETs `load_object` with each
//! request, or with `write = true` puts, gets and deletes a canary of its own.
//!
//! Credentials, first found wins: `service_account_key` (the JSON key's
//! text) or `service_account_file`; `GOOGLE_SERVICE_ACCOUNT` /
//! `GOOGLE_SERVICE_ACCOUNT_KEY`; the application default credentials
//! (`GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
//! application_default_credentials.json: a service account or an
//! authorized user); else the metadata server of the GCE VM, Cloud Run
//! service or GKE pod (workload identity).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use url::Url;

use super::load::Load;
use super::net::ClientOpts;
use super::objects::{self, Check, Connector, Dialect, LoadOp, ObjectLoad, Opened, Refusal, Transport, Words};
use super::param::Dur;
use super::service::Target;
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "gcs",
    doc: "a Google Cloud Storage bucket is reachable and listable with the deployment's credentials; optionally a canary write",
    target: "gs://bucket[/prefix]",
    schemes: &["gs"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The bucket, when the target does not name it.
    bucket: Option<String>,
    /// The storage API's base URL, for an emulator (default https://storage.googleapis.com, or STORAGE_EMULATOR_HOST).
    endpoint: Option<String>,
    /// A service account's JSON key, e.g. "${secret:file:/run/secrets/gcs.json}".
    service_account_key: Option<String>,
    /// Path of a service account's JSON key file.
    service_account_file: Option<String>,
    /// Send unauthenticated requests, for a public bucket or an emulator (default false).
    anonymous: Option<bool>,
    /// An object name prefix that must be listable; canary objects go under it.
    prefix: Option<String>,
    /// Put, get and delete a small canary object under the prefix (default false).
    write: Option<bool>,
    /// With `[probe.load]`: each request GETs this object, its name after the prefix (prefix "app/" and "health/ping.txt" make app/health/ping.txt), also with `write = true`. A load needs this or `write = true`.
    load_object: Option<String>,
    /// With `[probe.load]`, `write = true` and no `load_object`: each request puts, gets and deletes a canary of this size, e.g. "4KiB" (default 1KiB, at most 256KiB).
    load_object_size: Option<String>,
    /// Slowest acceptable list, put or get, e.g. "300ms".
    max_latency: Option<Dur>,
    /// PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// Verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
}

#[derive(Clone)]
struct Gcs {
    t: Target,
    base: Url,
    bucket: String,
    key: Option<String>,
    file: Option<String>,
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

fn parse(spec: &Spec<'_>) -> Result<Gcs, ParamError> {
    let d: Params = spec.params()?;
    let parsed = Target::parse("GCS", spec.target, &[("gs", 443, true)])?;
    let bucket = d.bucket.clone().unwrap_or_else(|| parsed.host.clone());
    let prefix = d.prefix.clone().unwrap_or_else(|| parsed.path());
    let endpoint = d
        .endpoint
        .clone()
        .or_else(|| parsed.query("endpoint"))
        .or_else(|| {
            std::env::var("STORAGE_EMULATOR_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .map(|h| if h.contains("://") { h } else { format!("http://{h}") })
        })
        .unwrap_or_else(|| "https://storage.googleapis.com".into());
    let base =
        Url::parse(&endpoint).map_err(|e| ParamError::new("endpoint", format!("`{endpoint}` is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(ParamError::new(
            "endpoint",
            format!("`{endpoint}` is not an http:// or https:// endpoint"),
        ));
    }
    if d.service_account_key.is_some() && d.service_account_file.is_some() {
        return Err(ParamError::new(
            "service_account_file",
            "give the key's text (`service_account_key`) or its file (`service_account_file`), not both",
        ));
    }
    let anonymous = d.anonymous.unwrap_or(false);
    if anonymous && (d.service_account_key.is_some() || d.service_account_file.is_some()) {
        return Err(ParamError::new(
            "anonymous",
            "anonymous requests carry no credentials: drop the service account, or `anonymous`",
        ));
    }
    let write = d.write.unwrap_or(false);
    let load = objects::load_op(&prefix, d.load_object.as_deref(), d.load_object_size.as_deref(), write)?;
    let host = base.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
    let password = d
        .service_account_key
        .as_deref()
        .and_then(|k| serde_json::from_str::<serde_json::Value>(k).ok())
        .and_then(|j| j.get("private_key").and_then(|p| p.as_str()).map(String::from));
    let t = Target {
        component: "GCS",
        host,
        port: base.port_or_known_default().unwrap_or(443),
        user: String::new(),
        password,
        shown: parsed.shown.clone(),
        tls: base.scheme() == "https",
        tls_hint: "use an https:// endpoint".into(),
        url: parsed.url,
    };
    Ok(Gcs {
        t,
        base,
        bucket,
        key: d.service_account_key,
        file: d.service_account_file,
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Probe for Gcs {
    /// The storage API's host; token endpoints and the metadata server are
    /// checked by the transport as they are asked.
    fn hosts(&self) -> Vec<Endpoint> {
        vec![objects::endpoint_of(&self.base)]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.each_addr(ctx, |addr| self.once(ctx, addr)).await })
    }

    fn load(&self) -> Option<Arc<dyn Load>> {
        let op = self.load.clone()?;
        Some(Arc::new(ObjectLoad::new(
            Arc::new(self.clone()),
            objects::endpoint_of(&self.base),
            self.t.clone(),
            &Google,
            self.bucket.clone(),
            self.prefix.clone(),
            op,
            Box::new(|_: &objects::Seen| None),
        )))
    }
}

/// A load worker's client.
impl objects::Opener for Gcs {
    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Opened, Outcome>> {
        Box::pin(async move {
            let (store, transport, credentials) = self.client(ctx, addr, true).await?;
            Ok(Opened {
                store: Arc::new(store),
                transport,
                credentials,
            })
        })
    }
}

struct Google;

impl Dialect for Google {
    fn noun(&self) -> &'static str {
        "bucket"
    }

    fn classify(&self, r: &Refusal) -> Class {
        match (r.status, r.code().as_str()) {
            (_, "NoSuchBucket" | "NoSuchKey") | (404, "") => Class::NotFound,
            (_, "AuthenticationRequired" | "InvalidSecurity" | "MissingSecurityHeader") | (401, _) => Class::Auth,
            (_, "AccessDenied" | "UserProjectAccountProblem") | (403, _) => Class::Permission,
            _ => Class::Status,
        }
    }

    fn credential_source(&self, host: &str) -> String {
        match host {
            "169.254.169.254" | "metadata.google.internal" => {
                format!("the GCE metadata server ({host}: the VM's or workload identity's service account)")
            }
            h => format!("the OAuth token endpoint {h}"),
        }
    }
}

impl Gcs {
    fn credentials(&self) -> (Vec<(GoogleConfigKey, String)>, String) {
        let mut c = Vec::new();
        let from = if self.anonymous {
            c.push((GoogleConfigKey::SkipSignature, "true".to_string()));
            "anonymous".to_string()
        } else if let Some(k) = &self.key {
            c.push((GoogleConfigKey::ServiceAccountKey, k.clone()));
            let email = serde_json::from_str::<serde_json::Value>(k)
                .ok()
                .and_then(|j| j.get("client_email").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_default();
            format!("service account `{email}`")
        } else if let Some(f) = &self.file {
            c.push((GoogleConfigKey::ServiceAccount, f.clone()));
            format!("service account key {f}")
        } else if let Some(f) = env("GOOGLE_SERVICE_ACCOUNT").or_else(|| env("GOOGLE_SERVICE_ACCOUNT_PATH")) {
            c.push((GoogleConfigKey::ServiceAccount, f.clone()));
            format!("service account key {f} (GOOGLE_SERVICE_ACCOUNT)")
        } else if let Some(k) = env("GOOGLE_SERVICE_ACCOUNT_KEY") {
            c.push((GoogleConfigKey::ServiceAccountKey, k));
            "service account key from GOOGLE_SERVICE_ACCOUNT_KEY".to_string()
        } else if let Some(f) = env("GOOGLE_APPLICATION_CREDENTIALS") {
            c.push((GoogleConfigKey::ApplicationCredentials, f.clone()));
            format!("application default credentials {f} (GOOGLE_APPLICATION_CREDENTIALS)")
        } else {
            "application default credentials of gcloud, else the metadata server: no service account \
             in the configuration or the environment"
                .to_string()
        };
        (c, from)
    }

    /// A client of the bucket over the guarded transport to `addr`
    /// (pooled for a load), and where its credentials come from.
    async fn client(
        &self,
        ctx: &Ctx,
        addr: SocketAddr,
        load: bool,
    ) -> Result<(object_store::gcp::GoogleCloudStorage, Transport, String), Outcome> {
        let store_url = format!("{}/{}", self.base.as_str().trim_end_matches('/'), self.bucket);
        let transport = if load {
            Transport::for_load(ctx, &self.opts, &store_url, &self.t.host, addr)
        } else {
            Transport::new(ctx, &self.opts, &store_url, &self.t.host, addr)
        }
        .map_err(|o| self.t.named(o))?;
        let (config, from) = self.credentials();
        let mut b = GoogleCloudStorageBuilder::new()
            .with_bucket_name(&self.bucket)
            .with_base_url(self.base.as_str().trim_end_matches('/'))
            .with_retry(objects::retry(ctx.timeout))
            .with_http_connector(Connector(transport.clone()));
        for (k, v) in &config {
            b = b.with_config(*k, v);
        }
        // Reading a key file or the gcloud file is I/O: at run time, off
        // the runtime's threads.
        let built = tokio::task::spawn_blocking(move || b.build()).await;
        match built {
            Ok(Ok(s)) => Ok((s, transport, from)),
            Ok(Err(e)) => Err(self.t.fail(
                Class::Auth,
                format!("cannot set up the GCS client ({from}): {}", objects::chain(&e)),
            )),
            Err(e) => Err(self.t.fail(Class::Auth, format!("cannot set up the GCS client: {e}"))),
        }
    }

    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Outcome {
        let (store, transport, from) = match self.client(ctx, addr, false).await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let explain = |_: &objects::Seen| None;
        Check {
            words: Words {
                t: &self.t,
                dialect: &Google,
                transport: &transport,
                container: &self.bucket,
                credentials: &from,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(params: &str) -> Result<Gcs, ParamError> {
        let params: toml::Table = toml::from_str(params).unwrap();
        parse(&Spec {
            target: "gs://orders/app-",
            params: &params,
        })
    }

    // fake-gcs-server takes no XML API uploads, so a GCS write load runs
    // against an emulator nowhere: its parameters are checked here, and its
    // round trips are the shared ones objects.rs tests.
    #[test]
    fn a_gcs_write_load_puts_canaries_of_load_object_size_under_the_prefix() {
        let g = parsed("write = true\nload_object_size = \"4KiB\"\nanonymous = true").unwrap();
        assert_eq!(g.load, Some(LoadOp::Canary(4096)));
        assert!(g.load().is_some());
        let g = parsed("load_object = \"health/ping.txt\"").unwrap();
        assert_eq!(g.load, Some(LoadOp::Get("app-health/ping.txt".into())));
        let g = parsed("").unwrap();
        assert!(g.load().is_none());
        let e = parsed("load_object_size = \"4KiB\"").err().unwrap();
        assert_eq!(e.param, "load_object_size");
    }
}
