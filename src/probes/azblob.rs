//! `azblob`: an Azure Blob Storage container is reachable and listable (one
//! blob) with the deployment's credentials, under `prefix` when given; with
//! `write = true`, a canary blob is put, read back and deleted (see
//! [`super::objects`]). Requests are signed by the `object_store` crate.
//! A `[probe.load]` GETs `load_object` with each request, or with
//! `write = true` puts, gets and deletes a canary blob of its own.
//!
//! Credentials, first found wins: a connection string's `AccountKey` or
//! `SharedAccessSignature`; `access_key`; `sas_token`; a service principal
//! (`client_id`, `client_secret`, `tenant_id`); then the environment as the
//! Azure SDKs read it (`AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_KEY`,
//! workload identity from `AZURE_FEDERATED_TOKEN_FILE` with `AZURE_CLIENT_ID`
//! and `AZURE_TENANT_ID`, `AZURE_CLIENT_SECRET`); else the managed identity
//! of the VM, App Service or AKS node, through the instance metadata service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use url::Url;

use super::load::Load;
use super::net::ClientOpts;
use super::objects::{self, Check, Connector, Dialect, LoadOp, ObjectLoad, Opened, Refusal, Transport, Words};
use super::param::Dur;
use super::service::Target;
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "azblob",
    doc: "an Azure Blob Storage container is reachable and listable with the deployment's credentials; optionally a canary write",
    target: "az://container[/prefix] with `account` or `connection_string`, or https://ACCOUNT.blob.core.windows.net/container[/prefix], or an emulator's http://host:port/ACCOUNT/container[/prefix]",
    schemes: &["az"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The storage account (default: the target's host, the connection string's, or AZURE_STORAGE_ACCOUNT_NAME).
    account: Option<String>,
    /// The container, when the target does not name it.
    container: Option<String>,
    /// The account's blob endpoint URL (default https://ACCOUNT.blob.core.windows.net).
    endpoint: Option<String>,
    /// A storage connection string, e.g. "${secret:env:AZURE_STORAGE_CONNECTION_STRING}".
    connection_string: Option<String>,
    /// The account key (shared key), e.g. "${secret:env:AZURE_STORAGE_KEY}".
    access_key: Option<String>,
    /// A SAS token (the query string, with or without its leading `?`).
    sas_token: Option<String>,
    /// A service principal's (or a workload identity's) application id.
    client_id: Option<String>,
    /// The service principal's secret.
    client_secret: Option<String>,
    /// The Entra ID tenant of the service principal.
    tenant_id: Option<String>,
    /// Send unsigned requests, for a public container (default false).
    anonymous: Option<bool>,
    /// A blob name prefix that must be listable; canary blobs go under it.
    prefix: Option<String>,
    /// Put, get and delete a small canary blob under the prefix (default false).
    write: Option<bool>,
    /// With `[probe.load]`: each request GETs this blob, its name after the prefix (prefix "app/" and "health/ping.txt" make app/health/ping.txt), also with `write = true`. A load needs this or `write = true`.
    load_object: Option<String>,
    /// With `[probe.load]`, `write = true` and no `load_object`: each request puts, gets and deletes a canary blob of this size, e.g. "4KiB" (default 1KiB, at most 256KiB).
    load_object_size: Option<String>,
    /// Slowest acceptable list, put or get, e.g. "300ms".
    max_latency: Option<Dur>,
    /// PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// Verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
}

#[derive(Clone)]
struct AzBlob {
    t: Target,
    /// The account URL requests are made under.
    service: Url,
    account: String,
    container: String,
    config: Vec<(AzureConfigKey, String)>,
    from: String,
    anonymous: bool,
    prefix: String,
    write: bool,
    /// What each request of a `[probe.load]` does.
    load: Option<LoadOp>,
    max_latency: Option<Duration>,
    opts: ClientOpts,
}

/// `Key=Value;...` of a storage connection string.
fn connection_string(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// Azurite's well-known development account and key (public, documented).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let d: Params = spec.params()?;
    let parsed = Target::parse(
        "Azure Blob",
        spec.target,
        &[("az", 443, true), ("https", 443, true), ("http", 80, false)],
    )?;
    let cs = d
        .connection_string
        .as_deref()
        .map(connection_string)
        .unwrap_or_default();
    let cs_get = |k: &str| cs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let dev = cs_get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if d.connection_string.is_some() && cs.is_empty() {
        return Err(ParamError::new(
            "connection_string",
            "is not a connection string: write AccountName=...;AccountKey=...;BlobEndpoint=...",
        ));
    }
    let path = parsed.path();
    let mut segs = path.splitn(2, '/');
    let first = segs.next().unwrap_or_default().to_string();
    let rest = segs.next().unwrap_or_default().to_string();
    // Where the target says the account, container and prefix are.
    let (t_account, t_endpoint, t_container, t_prefix) = match parsed.url.scheme() {
        "az" => (None, None, parsed.host.clone(), path.clone()),
        _ => {
            let host = parsed.host.clone();
            let mut base = parsed.url.clone();
            base.set_query(None);
            let _ = base.set_username("");
            let _ = base.set_password(None);
            if let Some(account) = host.strip_suffix(".blob.core.windows.net") {
                base.set_path("");
                (Some(account.to_string()), Some(base), first, rest)
            } else {
                // An emulator or a custom domain: /ACCOUNT/container/prefix.
                let mut segs = rest.splitn(2, '/');
                let container = segs.next().unwrap_or_default().to_string();
                let prefix = segs.next().unwrap_or_default().to_string();
                base.set_path(&format!("/{first}"));
                (Some(first.clone()), Some(base), container, prefix)
            }
        }
    };
    let account = d
        .account
        .clone()
        .or(t_account)
        .or_else(|| cs_get("accountname"))
        .or_else(|| dev.then(|| DEV_ACCOUNT.to_string()))
        .or_else(|| std::env::var("AZURE_STORAGE_ACCOUNT_NAME").ok().filter(|a| !a.is_empty()))
        .ok_or_else(|| {
            ParamError::new(
                "account",
                "names no storage account: set `account`, a `connection_string`, or use https://ACCOUNT.blob.core.windows.net/container",
            )
        })?;
    let endpoint = match d.endpoint.clone().or_else(|| cs_get("blobendpoint")) {
        Some(e) => {
            Some(Url::parse(&e).map_err(|err| ParamError::new("endpoint", format!("`{e}` is not a URL: {err}")))?)
        }
        None if dev => Some(Url::parse(&format!("http://127.0.0.1:10000/{DEV_ACCOUNT}")).expect("a URL")),
        None => t_endpoint,
    };
    let service = match endpoint {
        Some(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        Some(u) => {
            return Err(ParamError::new(
                "endpoint",
                format!("`{u}` is not an http:// or https:// endpoint"),
            ));
        }
        None => {
            let suffix = cs_get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
            let scheme = cs_get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
            Url::parse(&format!("{scheme}://{account}.blob.{suffix}"))
                .map_err(|e| ParamError::new("account", format!("`{account}` cannot be in a host name: {e}")))?
        }
    };
    let container = d.container.clone().unwrap_or(t_container);
    if container.is_empty() || container.contains('/') {
        return Err(ParamError::new(
            "container",
            format!(
                "`{}` names no container: write az://container or set `container`",
                parsed.shown
            ),
        ));
    }
    let prefix = d.prefix.clone().unwrap_or(t_prefix);
    let mut config = Vec::new();
    let mut from = None;
    let mut secret = None;
    let key = d
        .access_key
        .clone()
        .or_else(|| cs_get("accountkey"))
        .or_else(|| dev.then(|| DEV_KEY.to_string()));
    let sas = d.sas_token.clone().or_else(|| cs_get("sharedaccesssignature"));
    if let Some(k) = key {
        config.push((AzureConfigKey::AccessKey, k.clone()));
        from = Some(format!("shared key of account `{account}`"));
        secret = Some(k);
    } else if let Some(s) = sas {
        let s = s.trim_start_matches('?').to_string();
        config.push((AzureConfigKey::SasKey, s.clone()));
        from = Some("a SAS token".to_string());
        secret = Some(s);
    } else if let (Some(id), Some(s), Some(tenant)) = (&d.client_id, &d.client_secret, &d.tenant_id) {
        config.push((AzureConfigKey::ClientId, id.clone()));
        config.push((AzureConfigKey::ClientSecret, s.clone()));
        config.push((AzureConfigKey::AuthorityId, tenant.clone()));
        from = Some(format!("service principal `{id}`"));
        secret = Some(s.clone());
    } else if d.client_secret.is_some() || d.tenant_id.is_some() {
        return Err(ParamError::new(
            "client_id",
            "a service principal needs `client_id`, `client_secret` and `tenant_id`",
        ));
    } else if let Some(id) = &d.client_id {
        // A user-assigned managed identity, or workload identity's client.
        config.push((AzureConfigKey::ClientId, id.clone()));
    }
    let anonymous = d.anonymous.unwrap_or(false);
    if anonymous && from.is_some() {
        return Err(ParamError::new(
            "anonymous",
            "anonymous requests carry no credentials: drop the key, SAS token or secret, or `anonymous`",
        ));
    }
    let write = d.write.unwrap_or(false);
    let load = objects::load_op(&prefix, d.load_object.as_deref(), d.load_object_size.as_deref(), write)?;
    let host = service
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let t = Target {
        component: "Azure Blob",
        host,
        port: service.port_or_known_default().unwrap_or(443),
        user: String::new(),
        password: secret,
        shown: parsed.shown.clone(),
        tls: service.scheme() == "https",
        tls_hint: "use an https:// endpoint".into(),
        url: parsed.url,
    };
    Ok(Box::new(AzBlob {
        t,
        service,
        account,
        container,
        config,
        from: from.unwrap_or_default(),
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
    }))
}

/// Environment variables of the Azure credential chain.
const CHAIN_ENV: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_MSI_ENDPOINT",
];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Probe for AzBlob {
    /// The account's blob endpoint; credential endpoints (Entra ID, the
    /// instance metadata service) are checked by the transport as asked.
    fn hosts(&self) -> Vec<Endpoint> {
        vec![objects::endpoint_of(&self.service)]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.each_addr(ctx, |addr| self.once(ctx, addr)).await })
    }

    fn load(&self) -> Option<Arc<dyn Load>> {
        let op = self.load.clone()?;
        Some(Arc::new(ObjectLoad::new(
            Arc::new(self.clone()),
            objects::endpoint_of(&self.service),
            self.t.clone(),
            &Azure,
            self.container.clone(),
            self.prefix.clone(),
            op,
            Box::new(|_: &objects::Seen| None),
        )))
    }
}

/// A load worker's client.
impl objects::Opener for AzBlob {
    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Opened, Outcome>> {
        Box::pin(async move {
            let (store, transport, credentials) = self.client(ctx, addr, true)?;
            Ok(Opened {
                store: Arc::new(store),
                transport,
                credentials,
            })
        })
    }
}

struct Azure;

impl Dialect for Azure {
    fn noun(&self) -> &'static str {
        "container"
    }

    fn item(&self) -> &'static str {
        "blob"
    }

    fn classify(&self, r: &Refusal) -> Class {
        // "Server failed to authenticate the request": a signature or
        // token that does not check out, whatever the code says.
        if r.text().contains("failed to authenticate") {
            return Class::Auth;
        }
        match (r.status, r.code().as_str()) {
            (_, "ContainerNotFound" | "BlobNotFound" | "ResourceNotFound" | "AccountNotFound") | (404, "") => {
                Class::NotFound
            }
            (_, "AuthenticationFailed" | "InvalidAuthenticationInfo" | "NoAuthenticationInformation") | (401, _) => {
                Class::Auth
            }
            (
                _,
                "AuthorizationFailure"
                | "AuthorizationPermissionMismatch"
                | "AuthorizationResourceTypeMismatch"
                | "AuthorizationServiceMismatch"
                | "AuthorizationSourceIPMismatch"
                | "AuthorizationProtocolMismatch"
                | "PublicAccessNotPermitted",
            )
            | (403, "") => Class::Permission,
            _ => Class::Status,
        }
    }

    fn credential_source(&self, host: &str) -> String {
        match host {
            "169.254.169.254" => "the Azure instance metadata service (managed identity, 169.254.169.254)".into(),
            h if h.starts_with("login.") => format!("Entra ID ({h})"),
            h => format!("the token endpoint {h}"),
        }
    }
}

impl AzBlob {
    fn chain_credentials(&self) -> (Vec<(AzureConfigKey, String)>, String) {
        let mut config = self.config.clone();
        let mut from = self.from.clone();
        if from.is_empty() && !self.anonymous {
            for name in CHAIN_ENV {
                if let (Ok(k), Some(v)) = (name.to_ascii_lowercase().parse::<AzureConfigKey>(), env(name))
                    && !config.iter().any(|(c, _)| *c == k)
                {
                    config.push((k, v));
                }
            }
            from = if env("AZURE_STORAGE_ACCOUNT_KEY").is_some() {
                "shared key from AZURE_STORAGE_ACCOUNT_KEY".into()
            } else if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                "workload identity (AZURE_FEDERATED_TOKEN_FILE)".into()
            } else if env("AZURE_CLIENT_SECRET").is_some() {
                "service principal from AZURE_CLIENT_SECRET".into()
            } else if env("AZURE_STORAGE_SAS_KEY").is_some() {
                "a SAS token from AZURE_STORAGE_SAS_KEY".into()
            } else {
                "managed identity through the instance metadata service: no key, SAS token or \
                 service principal in the configuration or the environment"
                    .into()
            };
        }
        if self.anonymous {
            from = "anonymous".into();
        }
        (config, from)
    }

    /// A client of the container over the guarded transport to `addr`
    /// (pooled for a load), and where its credentials come from.
    fn client(
        &self,
        ctx: &Ctx,
        addr: SocketAddr,
        load: bool,
    ) -> Result<(object_store::azure::MicrosoftAzure, Transport, String), Outcome> {
        let store_url = format!("{}/{}", self.service.as_str().trim_end_matches('/'), self.container);
        let transport = if load {
            Transport::for_load(ctx, &self.opts, &store_url, &self.t.host, addr)
        } else {
            Transport::new(ctx, &self.opts, &store_url, &self.t.host, addr)
        }
        .map_err(|o| self.t.named(o))?;
        let (config, from) = self.chain_credentials();
        let mut b = MicrosoftAzureBuilder::new()
            .with_account(&self.account)
            .with_container_name(&self.container)
            .with_endpoint(self.service.as_str().trim_end_matches('/').to_string())
            .with_allow_http(self.service.scheme() == "http")
            .with_skip_signature(self.anonymous)
            .with_retry(objects::retry(ctx.timeout))
            .with_http_connector(Connector(transport.clone()));
        for (k, v) in &config {
            b = b.with_config(*k, v);
        }
        match b.build() {
            Ok(s) => Ok((s, transport, from)),
            Err(e) => Err(self.t.fail(
                Class::Auth,
                format!(
                    "cannot set up the Azure client ({from}): {}",
                    objects::no_queries(&objects::chain(&e))
                ),
            )),
        }
    }

    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Outcome {
        let (store, transport, from) = match self.client(ctx, addr, false) {
            Ok(c) => c,
            Err(o) => return o,
        };
        let explain = |_: &objects::Seen| None;
        Check {
            words: Words {
                t: &self.t,
                dialect: &Azure,
                transport: &transport,
                container: &self.container,
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

    fn hosts(target: &str, params: &str) -> Result<(String, String, String), String> {
        let params: toml::Table = toml::from_str(params).unwrap();
        let p = build(&Spec {
            target,
            params: &params,
        })
        .map_err(|e| format!("{}: {}", e.param, e.message))?;
        let h = p.hosts().remove(0);
        Ok((h.host, h.port.unwrap_or_default().to_string(), String::new()))
    }

    #[test]
    fn targets_name_the_account_endpoint() {
        assert_eq!(
            hosts("https://orders.blob.core.windows.net/invoices/app-", "")
                .unwrap()
                .0,
            "orders.blob.core.windows.net"
        );
        assert_eq!(
            hosts("az://invoices/app-", "account = \"orders\"").unwrap().0,
            "orders.blob.core.windows.net"
        );
        assert_eq!(
            hosts(
                "az://invoices",
                "connection_string = \"DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=a2V5;BlobEndpoint=http://10.0.0.9:10000/dev;\""
            )
            .unwrap(),
            ("10.0.0.9".into(), "10000".into(), String::new())
        );
        assert_eq!(
            hosts("http://127.0.0.1:10000/devstoreaccount1/invoices", "").unwrap().0,
            "127.0.0.1"
        );
        assert!(hosts("az://invoices", "").unwrap_err().starts_with("account:"));
        assert!(
            hosts("az://invoices", "account = \"a\"\nclient_secret = \"s\"")
                .unwrap_err()
                .starts_with("client_id:")
        );
    }
}
