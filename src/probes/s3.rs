//! `s3`: the bucket is reachable and listable (ListObjectsV2, one key) with
//! these credentials, under `prefix` when given. With `write = true`, also
//! put, get and delete a small canary object under the prefix and report
//! put/get latency against `max_latency`; the canary is always deleted.
//! Requests are signed here (AWS Signature V4 in the Authorization header,
//! with ring's HMAC-SHA256) and sent with the run's shared HTTP clients.
//!
//! Bounds: an answer's body is at most 256 KiB (a longer one fails the
//! probe); headers are bounded by the HTTP engine as for `http`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ring::{digest, hmac};
use url::Url;

use super::net::ClientOpts;
use super::param::Dur;
use super::service::{self, Target, ms};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "s3",
    doc: "an S3 bucket is reachable and listable with these credentials; optionally a canary write",
    target: "http(s)://endpoint/bucket[/prefix] (path style), or s3://bucket[/prefix] with `endpoint` or `region`",
    schemes: &["s3"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// S3 endpoint URL for s3:// targets (default https://s3.REGION.amazonaws.com).
    endpoint: Option<String>,
    /// The bucket, when the target does not name it.
    bucket: Option<String>,
    /// Signing region (default us-east-1).
    region: Option<String>,
    /// Access key id, e.g. "${storage.access_key}" (default: the target URL's user).
    access_key: Option<String>,
    /// Secret access key, e.g. "${storage.secret_key}" (default: the target URL's password).
    secret_key: Option<String>,
    /// A key prefix that must be listable; canary objects go under it.
    prefix: Option<String>,
    /// Put, get and delete a small canary object under the prefix (default false).
    write: Option<bool>,
    /// Slowest acceptable list, put or get, e.g. "300ms".
    max_latency: Option<Dur>,
    /// PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// Verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
}

struct S3 {
    t: Target,
    endpoint: Url,
    bucket: String,
    region: String,
    keys: Option<(String, String)>,
    prefix: String,
    write: bool,
    max_latency: Option<Duration>,
    opts: ClientOpts,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
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
        .unwrap_or_else(|| "us-east-1".into());
    let path = parsed.path();
    let (endpoint, bucket, prefix) = if parsed.url.scheme() == "s3" {
        let ep = d
            .endpoint
            .clone()
            .or_else(|| parsed.query("endpoint"))
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
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
        (base.as_str().trim_end_matches('/').to_string(), b, p)
    };
    let endpoint =
        Url::parse(&endpoint).map_err(|e| ParamError::new("endpoint", format!("`{endpoint}` is not a URL: {e}")))?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
        return Err(ParamError::new(
            "endpoint",
            format!("`{endpoint}` is not an http:// or https:// endpoint"),
        ));
    }
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
    let prefix = d.prefix.clone().unwrap_or(prefix);
    let access = d
        .access_key
        .clone()
        .or_else(|| (!parsed.user.is_empty()).then(|| parsed.user.clone()));
    let secret = d.secret_key.clone().or_else(|| parsed.password.clone());
    let keys = match (access, secret) {
        (Some(a), Some(s)) => Some((a, s)),
        (None, None) => None,
        (Some(_), None) => return Err(ParamError::new("secret_key", "an access key needs its `secret_key`")),
        (None, Some(_)) => return Err(ParamError::new("access_key", "a secret key needs its `access_key`")),
    };
    let host = endpoint
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let t = Target {
        component: "S3",
        host,
        port: endpoint.port_or_known_default().unwrap_or(443),
        user: keys.as_ref().map(|k| k.0.clone()).unwrap_or_default(),
        password: keys.as_ref().map(|k| k.1.clone()),
        shown: parsed.shown.clone(),
        tls: endpoint.scheme() == "https",
        tls_hint: "use an https:// endpoint".into(),
        url: parsed.url,
    };
    Ok(Box::new(S3 {
        t,
        endpoint,
        bucket,
        region,
        keys,
        prefix,
        write: d.write.unwrap_or(false),
        max_latency: d.max_latency.map(|m| m.0),
        opts: ClientOpts {
            follow_redirects: false,
            ca_file: d.ca_file.clone(),
            verify: d.tls_verify.unwrap_or(true),
            client: None,
        },
    }))
}

impl Probe for S3 {
    /// The endpoint it signs requests for and dials, whatever the target
    /// looked like (`s3://bucket?endpoint=...`, the `endpoint` parameter, or
    /// the region's AWS endpoint it falls back to).
    fn hosts(&self) -> Vec<Endpoint> {
        let host = self.endpoint.host_str().unwrap_or_default().trim_matches(['[', ']']);
        vec![Endpoint::new(host, self.endpoint.port_or_known_default())]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.each_addr(ctx, |addr| self.once(ctx, addr)).await })
    }
}

static CANARIES: AtomicU64 = AtomicU64::new(0);

/// The largest answer read: a one-key listing, an error document or the
/// canary is far smaller.
const BODY: u64 = 256 << 10;

/// AWS's URI encoding: everything but unreserved characters.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

impl S3 {
    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Outcome {
        let client = match ctx.http_client(&self.opts, &self.t.host, addr) {
            Ok(c) => c,
            Err(e) => return self.t.fail(Class::Tls, e),
        };
        let mut query = vec![("list-type", "2".to_string()), ("max-keys", "1".to_string())];
        if !self.prefix.is_empty() {
            query.push(("prefix", self.prefix.clone()));
        }
        let start = Instant::now();
        let (listed, body) = match self
            .call(&client, ctx, addr, reqwest::Method::GET, None, &query, Vec::new())
            .await
        {
            Ok(r) => r,
            Err(o) => return o,
        };
        let list_took = start.elapsed();
        if !listed.is_success() {
            return self.refused(listed, &body, "listing");
        }
        let what = if self.prefix.is_empty() {
            String::new()
        } else {
            format!(" under `{}`", self.prefix)
        };
        let mut msg = format!("bucket `{}` listable{what} on {addr} in {}", self.bucket, ms(list_took));
        if let Some(o) = service::over_latency(&self.t, "listing", list_took, self.max_latency) {
            return o;
        }
        if self.write {
            match self.canary(&client, ctx, addr).await {
                Ok(m) => msg.push_str(&m),
                Err(o) => return o,
            }
        }
        Outcome::pass(msg)
    }

    /// Put, get and delete one small object under the prefix; the delete
    /// runs whatever happened to the get.
    async fn canary(&self, client: &reqwest::Client, ctx: &Ctx, addr: SocketAddr) -> Result<String, Outcome> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = CANARIES.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}envgate-canary-{}-{n}-{nanos}", self.prefix, std::process::id());
        let body = format!("envgate canary {nanos}").into_bytes();
        let start = Instant::now();
        let (st, text) = self
            .call(client, ctx, addr, reqwest::Method::PUT, Some(&key), &[], body.clone())
            .await?;
        let put = start.elapsed();
        if !st.is_success() {
            return Err(self.refused(st, &text, &format!("writing canary `{key}`")));
        }
        let start = Instant::now();
        let got = self
            .call(client, ctx, addr, reqwest::Method::GET, Some(&key), &[], Vec::new())
            .await;
        let get = start.elapsed();
        let deleted = self
            .call(client, ctx, addr, reqwest::Method::DELETE, Some(&key), &[], Vec::new())
            .await;
        let (st, text) = got?;
        if !st.is_success() {
            return Err(self.refused(st, &text, &format!("reading canary `{key}`")));
        }
        if text.as_bytes() != body.as_slice() {
            return Err(self.t.fail(
                Class::Body,
                format!("canary `{key}` read back different bytes than were written"),
            ));
        }
        match deleted? {
            (st, _) if st.is_success() => {}
            (st, text) => return Err(self.refused(st, &text, &format!("deleting canary `{key}`"))),
        }
        for (what, took) in [("put", put), ("get", get)] {
            if let Some(o) = service::over_latency(&self.t, &format!("canary {what}"), took, self.max_latency) {
                return Err(o);
            }
        }
        Ok(format!("; canary put {}, get {}, deleted", ms(put), ms(get)))
    }

    /// One signed request: its status and body text (bodies here are small).
    #[expect(
        clippy::too_many_arguments,
        reason = "one request's parts; a struct would only rename them"
    )]
    async fn call(
        &self,
        client: &reqwest::Client,
        ctx: &Ctx,
        addr: SocketAddr,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, String), Outcome> {
        let mut path = format!("/{}", utf8_percent_encode(&self.bucket, ENCODE));
        if let Some(k) = key {
            path.push('/');
            path.push_str(
                &k.split('/')
                    .map(|s| utf8_percent_encode(s, ENCODE).to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| {
                (
                    utf8_percent_encode(k, ENCODE).to_string(),
                    utf8_percent_encode(v, ENCODE).to_string(),
                )
            })
            .collect();
        pairs.sort();
        let qs = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let base = self.endpoint.as_str().trim_end_matches('/');
        let url = if qs.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{qs}")
        };
        let url =
            Url::parse(&url).map_err(|e| self.t.fail(Class::Protocol, format!("cannot build a request URL: {e}")))?;
        let mut req = client.request(method.clone(), url.clone()).timeout(ctx.timeout);
        if let Some((ak, sk)) = &self.keys {
            for (h, v) in sign(
                method.as_str(),
                &url,
                &path,
                &qs,
                &self.region,
                ak,
                sk,
                &body,
                SystemTime::now(),
            ) {
                req = req.header(h, v);
            }
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| self.request_error(addr, ctx.timeout, &e))?;
        let status = resp.status();
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.request_error(addr, ctx.timeout, &e))?
        {
            if body.len() + chunk.len() > BODY as usize {
                return Err(self.t.fail(
                    Class::Protocol,
                    format!(
                        "{addr} answered with more than {}, more than a one-key listing or an error needs (is this an S3 endpoint?)",
                        crate::config::units::format_bytes(BODY)
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn refused(&self, status: reqwest::StatusCode, body: &str, doing: &str) -> Outcome {
        let code = between(body, "<Code>", "</Code>").unwrap_or_default();
        let text = between(body, "<Message>", "</Message>").unwrap_or_default();
        let (code, text) = (&*super::bounded::cut(code, 60), &*super::bounded::cut(text, 300));
        let class = match (status.as_u16(), code) {
            (_, "NoSuchBucket") | (404, "") => Class::NotFound,
            (
                _,
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "InvalidClientTokenId",
            ) => Class::Auth,
            (_, "AccessDenied" | "AllAccessDisabled") | (403, "") => Class::Permission,
            _ => Class::Status,
        };
        let detail = match class {
            Class::NotFound => format!("bucket `{}` does not exist", self.bucket),
            Class::Auth => format!("the credentials of access key `{}` were refused", self.t.user),
            Class::Permission => format!("access key `{}` may not {doing} bucket `{}`", self.t.user, self.bucket),
            _ => format!("{doing} bucket `{}`", self.bucket),
        };
        let why = [code, text]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(": ");
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        self.t.fail(class, format!("{detail}: HTTP {}{why}", status.as_u16()))
    }

    fn request_error(&self, addr: SocketAddr, timeout: Duration, e: &reqwest::Error) -> Outcome {
        self.t.named(super::http::request_error(
            addr,
            &self.t.host,
            &self.endpoint,
            timeout,
            e,
        ))
    }
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let start = s.find(a)? + a.len();
    let end = s[start..].find(b)? + start;
    Some(&s[start..end])
}

/// AWS Signature Version 4 headers for one S3 request: `path` and `query`
/// already in canonical (encoded, sorted) form.
#[expect(clippy::too_many_arguments, reason = "the inputs of the signature, each used once")]
fn sign(
    method: &str,
    url: &Url,
    path: &str,
    query: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
    body: &[u8],
    now: SystemTime,
) -> Vec<(&'static str, String)> {
    let (date, stamp) = amz_date(now);
    let payload = hex(digest::digest(&digest::SHA256, body).as_ref());
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{stamp}\n\n{signed}\n{payload}"
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mac = |key: &[u8], msg: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg.as_bytes())
            .as_ref()
            .to_vec()
    };
    let mut key = mac(format!("AWS4{secret_key}").as_bytes(), &date);
    for part in [region, "s3", "aws4_request"] {
        key = mac(&key, part);
    }
    let signature = hex(&mac(&key, &to_sign));
    vec![
        ("x-amz-date", stamp),
        ("x-amz-content-sha256", payload),
        (
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"),
        ),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `("20240131", "20240131T235959Z")` in UTC.
fn amz_date(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!("{date}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
    (date, stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(amz_date(UNIX_EPOCH), ("19700101".into(), "19700101T000000Z".into()));
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29 23:59:59
        assert_eq!(amz_date(t).1, "20240229T235959Z");
    }

    /// The "GET Bucket (List Objects)" example of AWS's Signature V4 documentation.
    #[test]
    fn signature_matches_the_aws_example() {
        let url = Url::parse("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
        let (ak, sk) = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let h = sign("GET", &url, "/", "max-keys=2&prefix=J", "us-east-1", ak, sk, b"", now);
        assert_eq!(h[0].1, "20130524T000000Z");
        assert_eq!(
            h[1].1,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(
            h[2].1
                .ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            "{}",
            h[2].1
        );
    }
}
