//! Object storage through the credentials deployments use, against real
//! emulators scripts/setup/storage.sh installs, each started here on a free
//! port: moto's S3 and STS (over TLS with a certificate made here, for web
//! identity), Azurite for Azure Blob Storage, fake-gcs-server for GCS.
//! The AWS credential chain runs in the real binary, with the environment a
//! pod or a developer's shell would give it: shared profiles and their
//! credential_process, web identity (STS over TLS), IMDSv2 (moto's, through
//! AWS_METADATA_ENDPOINT: no test ever asks 169.254.169.254).

use std::path::Path;
use std::process::Command;

use envgate::outcome::Status;

use super::support::*;
use super::tls::Pki;

const TOOLS: &str = "/opt/envgate-tools";

/// moto over TLS with the test CA's certificate for 127.0.0.1.
fn moto_tls(pki: &Pki) -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .arg("-c")
        .arg(pki.cert())
        .arg("-k")
        .arg(pki.key_for("root"))
        .current_dir(dir.path());
    Server::spawn(&mut cmd, port, String::new(), dir)
}

/// In moto at `base`: a bucket, an IAM user with `actions` on S3 and its
/// keys, a role `app` web identities may assume with s3:*; then
/// authentication on. Returns the user's access key id and secret.
fn moto_iam(base: &str, ca: Option<&str>, bucket: &str, actions: &str) -> (String, String) {
    moto_iam_with(base, ca, bucket, actions, true)
}

/// [`moto_iam`], leaving authentication off when `auth` is false.
fn moto_iam_with(base: &str, ca: Option<&str>, bucket: &str, actions: &str, auth: bool) -> (String, String) {
    let verify = ca.map_or("True".to_string(), |c| format!("'{c}'"));
    let out = python(&format!(
        r#"import boto3, json, urllib.request, ssl
base = "{base}"
kw = dict(endpoint_url=base, aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1", verify={verify})
iam = boto3.client("iam", **kw)
iam.create_user(UserName="app")
k = iam.create_access_key(UserName="app")["AccessKey"]
doc = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": {actions}, "Resource": "*"}}]}}
iam.put_user_policy(UserName="app", PolicyName="s3", PolicyDocument=json.dumps(doc))
trust = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"Federated": "oidc"}}, "Action": "sts:AssumeRoleWithWebIdentity"}}]}}
iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(trust))
full = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}]}}
iam.put_role_policy(RoleName="app", PolicyName="s3", PolicyDocument=json.dumps(full))
boto3.client("s3", **kw).create_bucket(Bucket="{bucket}")
ctx = ssl.create_default_context(cafile={verify_file}) if base.startswith("https") else None
req = urllib.request.Request(base + "/moto-api/reset-auth", data=b"0", method="POST", headers={{"Content-Type": "text/plain"}})
if {auth}:
    urllib.request.urlopen(req, context=ctx)
print(k["AccessKeyId"])
print(k["SecretAccessKey"])
"#,
        verify_file = ca.map_or("None".to_string(), |c| format!("'{c}'")),
        auth = if auth { "True" } else { "False" },
    ));
    let mut lines = out.lines().map(String::from);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// A project whose one probe is `probe` (TOML of a `[[probe]]` table).
fn project(probe: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"t\"\nenvironments = [\"prod\"]\n");
    w("environments/base.toml", "[app]\nname = \"t\"\n");
    w("environments/prod.toml", "[app]\nname = \"t\"\n");
    w("checks/probes.toml", &format!("[[probe]]\nname = \"storage\"\n{probe}"));
    dir
}

/// `envgate check --env prod --format json` with only `env` in the
/// environment (and PATH): the probe's status, message and all output.
fn check(dir: &Path, env: &[(&str, &str)]) -> (String, String, String) {
    let mut cmd = assert_cmd::Command::cargo_bin("envgate").unwrap();
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .args(["check", "--env", "prod", "--format", "json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let r = report["environments"][0]["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "storage"))
        .unwrap_or_else(|| panic!("no `storage` result: {all}"))
        .clone();
    (
        r["status"].as_str().unwrap_or_default().to_string(),
        r["message"].as_str().unwrap_or_default().to_string(),
        all,
    )
}

#[test]
fn s3_web_identity_reads_the_token_file_and_asks_sts_over_tls_only() {
    let pki = Pki::new();
    let moto = moto_tls(&pki);
    let base = format!("https://127.0.0.1:{}", moto.port);
    let bucket = unique("wi").replace('_', "-");
    moto_iam(&base, Some(&pki.ca_file), &bucket, "\"s3:*\"");
    let dir = project(&format!(
        "kind = \"s3\"\ntarget = \"s3://{bucket}/app-\"\nendpoint = \"{base}\"\nca_file = \"{}\"\nwrite = true\n",
        pki.ca_file
    ));
    let token = dir.path().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwIn0.c2ln",
    )
    .unwrap();
    let token = token.to_string_lossy().into_owned();
    let role = "arn:aws:iam::123456789012:role/app";
    // The token reaches STS over TLS (verified against the test CA), as
    // object_store sends it: the AssumeRoleWithWebIdentity parameters in
    // the query of an unsigned POST. moto's single-port server cannot
    // answer that one with its authentication on (it fails with 500 for
    // want of a signature), so the probe reports the credential endpoint's
    // refusal: `auth`, naming the role, not a misleading permission
    // failure of the bucket. The profile test shows keys from the chain
    // passing.
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_ROLE_ARN", role),
        ("AWS_ENDPOINT_URL_STS", base.as_str()),
    ];
    let (status, message, all) = check(dir.path(), &env);
    assert_eq!(status, "fail", "{all}");
    assert!(
        message.starts_with("auth: S3")
            && message.contains(&format!("web identity for role `{role}`"))
            && message.contains("refused to give credentials"),
        "{message}"
    );
    // The token file is gone (a pod whose projected token is missing).
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"),
        ("AWS_ROLE_ARN", role),
        ("AWS_ENDPOINT_URL_STS", base.as_str()),
    ];
    let (status, message, all) = check(dir.path(), &env);
    assert_eq!(status, "fail", "{all}");
    assert!(message.starts_with("auth: S3 s3://"), "{message}");
    assert!(message.contains("/nonexistent/token"), "{message}");
    // STS over plain http: the token is never sent.
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_ROLE_ARN", role),
        ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"),
    ];
    let (status, message, all) = check(dir.path(), &env);
    assert_eq!(status, "fail", "{all}");
    assert!(
        message.starts_with("auth: S3") && message.contains("over plain http://"),
        "{message}"
    );
}

#[test]
fn s3_takes_credentials_from_a_shared_profile_or_its_credential_process() {
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("prof").replace('_', "-");
    let (ak, sk) = moto_iam(&base, None, &bucket, "\"s3:*\"");
    let dir = project(&format!(
        "kind = \"s3\"\ntarget = \"s3://{bucket}\"\nendpoint = \"{base}\"\nwrite = true\n"
    ));
    let answer = dir.path().join("answer.json");
    std::fs::write(
        &answer,
        format!(r#"{{"Version": 1, "AccessKeyId": "{ak}", "SecretAccessKey": "{sk}"}}"#),
    )
    .unwrap();
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = nope\n\n[ci]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\n"),
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile tool]\ncredential_process = cat \"{}\"\n[profile sso]\nsso_session = corp\n",
            answer.display()
        ),
    )
    .unwrap();
    let (c, f) = (
        creds.to_string_lossy().into_owned(),
        config.to_string_lossy().into_owned(),
    );
    let files = [
        ("AWS_SHARED_CREDENTIALS_FILE", c.as_str()),
        ("AWS_CONFIG_FILE", f.as_str()),
    ];
    let with = |profile: &str| {
        let mut e = files.to_vec();
        e.push(("AWS_PROFILE", profile));
        check(dir.path(), &e)
    };
    let (status, message, all) = with("ci");
    assert_eq!(status, "pass", "{all}");
    assert!(
        message.contains("of profile `ci`") && message.contains("canary put"),
        "{message}"
    );
    assert!(!all.contains(&sk), "the secret key leaked:\n{all}");

    let (status, message, all) = with("tool");
    assert_eq!(status, "pass", "{all}");
    assert!(message.contains("credential_process of profile `tool`"), "{message}");
    assert!(!all.contains(&sk), "the secret key leaked:\n{all}");

    // The default profile's keys are refused by the server: `auth`.
    let (status, message, all) = check(dir.path(), &files);
    assert_eq!(status, "fail", "{all}");
    assert!(
        message.starts_with("auth: S3") && message.contains("AKIAWRONGDEFAULT"),
        "{message}"
    );

    let (status, message, _) = with("nope");
    assert_eq!(status, "fail");
    assert!(message.contains("profile `nope` is in neither"), "{message}");
    let (status, message, _) = with("sso");
    assert_eq!(status, "fail");
    assert!(message.contains("IAM Identity Center (SSO)"), "{message}");
}

#[tokio::test]
async fn s3_fails_permission_when_the_keys_may_list_but_not_write() {
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("ro").replace('_', "-");
    let (ak, sk) = moto_iam(&base, None, &bucket, "[\"s3:ListBucket\"]");
    let f = probe("s3", &format!("s3://{bucket}/app-"), |d| {
        d.set("endpoint", base.clone());
        d.set("access_key", ak.as_str());
        d.set("secret_key", sk.as_str());
    })
    .await;
    assert_status(&f, Status::Pass, "listable under `app-`");
    let f = probe("s3", &format!("s3://{bucket}/app-"), |d| {
        d.set("endpoint", base.clone());
        d.set("access_key", ak.as_str());
        d.set("secret_key", sk.as_str());
        d.set("write", true);
    })
    .await;
    assert_status(&f, Status::Fail, "permission: S3");
    assert!(f.message.contains("may not write canary"), "{}", f.message);
}

#[tokio::test]
async fn s3_over_tls_fails_tls_with_an_untrusted_certificate() {
    let pki = Pki::new();
    let moto = moto_tls(&pki);
    let f = probe("s3", "s3://bk/app-", |d| {
        d.set("endpoint", format!("https://127.0.0.1:{}", moto.port));
        d.set("access_key", "AKIAEXAMPLE");
        d.set("secret_key", "secret-key-example");
    })
    .await;
    assert_status(&f, Status::Fail, "tls: S3 s3://bk/app-");
}

/// Azurite's blob service on a free port, in memory.
pub(super) fn azurite() -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let mut cmd = Command::new(format!("{TOOLS}/azurite/node_modules/.bin/azurite-blob"));
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args([
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ])
        .current_dir(dir.path());
    Server::spawn(&mut cmd, port, String::new(), dir)
}

pub(super) const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A container in Azurite, and a read-and-list-only SAS token for it.
fn azure_container(port: u16, container: &str) -> String {
    python(&format!(
        r#"from azure.storage.blob import BlobServiceClient, generate_container_sas, ContainerSasPermissions
from datetime import datetime, timedelta, timezone
cs = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
BlobServiceClient.from_connection_string(cs).create_container("{container}")
print(generate_container_sas("devstoreaccount1", "{container}", account_key="{DEV_KEY}",
    permission=ContainerSasPermissions(read=True, list=True), expiry=datetime.now(timezone.utc) + timedelta(hours=1)))
"#
    ))
    .trim()
    .to_string()
}

#[tokio::test]
async fn azblob_lists_and_writes_a_canary_in_azurite_and_classifies_refusals() {
    let az = azurite();
    let container = unique("c").replace('_', "-");
    let sas = azure_container(az.port, &container);
    let endpoint = format!("http://127.0.0.1:{}/devstoreaccount1", az.port);
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint={endpoint};"
    );
    let f = probe("azblob", &format!("az://{container}/app-"), |d| {
        d.set("connection_string", cs.as_str());
        d.set("write", true);
    })
    .await;
    assert_status(&f, Status::Pass, "canary put");
    assert!(
        f.message.contains("shared key of account `devstoreaccount1`"),
        "{}",
        f.message
    );

    // The account URL form, with the key as a parameter.
    let f = probe("azblob", &format!("{endpoint}/{container}"), |d| {
        d.set("access_key", DEV_KEY)
    })
    .await;
    assert_status(&f, Status::Pass, &format!("container `{container}` listable"));

    let f = probe("azblob", &format!("{endpoint}/{container}-missing"), |d| {
        d.set("access_key", DEV_KEY)
    })
    .await;
    assert_status(&f, Status::Fail, "not_found: Azure Blob");

    // Another key of the right length: the signature does not match.
    let wrong = "d3JvbmctYnV0LXdlbGwtZm9ybWVkLWtleS1vZi02NC1ieXRlcy0wMTIzNDU2Nzg5MDEyMzQ1Njc4OQ==";
    let f = probe("azblob", &format!("{endpoint}/{container}"), |d| {
        d.set("access_key", wrong)
    })
    .await;
    assert_status(&f, Status::Fail, "auth: Azure Blob");
    assert!(!f.message.contains(wrong), "{}", f.message);

    // A SAS token that may read and list, not write.
    let f = probe("azblob", &format!("{endpoint}/{container}/app-"), |d| {
        d.set("sas_token", sas.as_str());
    })
    .await;
    assert_status(&f, Status::Pass, "a SAS token");
    let f = probe("azblob", &format!("{endpoint}/{container}/app-"), |d| {
        d.set("sas_token", sas.as_str());
        d.set("write", true);
    })
    .await;
    assert_status(&f, Status::Fail, "permission: Azure Blob");
    let sig = sas
        .split("sig=")
        .nth(1)
        .unwrap_or_default()
        .split('&')
        .next()
        .unwrap_or_default();
    assert!(!sig.is_empty() && !f.message.contains(sig), "{}", f.message);
    let left = python(&format!(
        r#"from azure.storage.blob import BlobServiceClient
cs = "{cs}"
print(len(list(BlobServiceClient.from_connection_string(cs).get_container_client("{container}").list_blobs())))
"#
    ));
    assert_eq!(left.trim(), "0", "the canaries were cleaned up");
}

/// fake-gcs-server on a free port, in memory, over plain HTTP.
pub(super) fn fake_gcs() -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let mut cmd = Command::new(format!("{TOOLS}/fake-gcs-server/bin/fake-gcs-server"));
    cmd.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string()])
        .args([
            "-public-host",
            &format!("127.0.0.1:{port}"),
            "-backend",
            "memory",
            "-log-level",
            "error",
        ]);
    Server::spawn(&mut cmd, port, String::new(), dir)
}

#[tokio::test]
async fn gcs_lists_a_bucket_with_a_service_account_key_and_refuses_a_broken_key() {
    let gcs = fake_gcs();
    let base = format!("http://127.0.0.1:{}", gcs.port);
    let bucket = unique("g").replace('_', "-");
    python(&format!(
        r#"import json, urllib.request
req = urllib.request.Request("{base}/storage/v1/b?project=t", data=json.dumps({{"name": "{bucket}"}}).encode(), headers={{"Content-Type": "application/json"}})
urllib.request.urlopen(req)
"#
    ));
    let f = probe("gcs", &format!("gs://{bucket}/app-"), |d| {
        d.set("endpoint", base.as_str());
        d.set("anonymous", true);
    })
    .await;
    assert_status(&f, Status::Pass, &format!("bucket `{bucket}` listable under `app-`"));

    // A service account key: object_store signs its own token (RS256) and
    // sends it; the emulator takes any.
    let key = run(Command::new("openssl").args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]));
    let account = serde_json::json!({
        "type": "service_account",
        "client_email": "probe@envgate-test.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": key,
    })
    .to_string();
    let f = probe("gcs", &format!("gs://{bucket}"), |d| {
        d.set("endpoint", base.as_str());
        d.set("service_account_key", account.as_str());
    })
    .await;
    assert_status(
        &f,
        Status::Pass,
        "service account `probe@envgate-test.iam.gserviceaccount.com`",
    );

    let broken = account.replace("MII", "XXX");
    let f = probe("gcs", &format!("gs://{bucket}"), |d| {
        d.set("endpoint", base.as_str());
        d.set("service_account_key", broken.as_str());
    })
    .await;
    assert_status(&f, Status::Fail, "auth: GCS gs://");
    assert!(!f.message.contains("PRIVATE KEY"), "{}", f.message);
}

#[tokio::test]
async fn object_stores_fail_refused_and_timeout_like_every_kind() {
    let closed = ClosedPort::new();
    let silent = silent_listener().await;
    for (port, want, within) in [
        (closed.port, "refused: ", std::time::Duration::from_secs(5)),
        (silent.port(), "timeout: ", std::time::Duration::from_millis(400)),
    ] {
        let base = format!("http://127.0.0.1:{port}");
        let cases = [
            ("s3", format!("{base}/orders"), ("access_key", "AKIAEXAMPLE")),
            ("gcs", "gs://orders".to_string(), ("endpoint", base.as_str())),
            (
                "azblob",
                format!("{base}/devstoreaccount1/orders"),
                ("access_key", DEV_KEY),
            ),
        ];
        for (kind, target, (k, v)) in cases {
            let f = probe_within(kind, &target, within, |d| {
                d.set(k, v);
                if kind == "s3" {
                    d.set("secret_key", "secret-key-example");
                }
                if kind == "gcs" {
                    d.set("anonymous", true);
                }
            })
            .await;
            assert_status(&f, Status::Fail, want);
            assert!(!f.message.contains(DEV_KEY), "{}", f.message);
        }
    }
}

#[test]
fn a_credential_endpoint_of_another_environment_is_refused_before_it_is_dialed() {
    // STS at an address that belongs to prod, asked from staging: the
    // transport refuses it as it refuses the bucket's own host.
    let sts = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let sts_port = sts.local_addr().unwrap().port();
    let closed = ClosedPort::new();
    let dir = super::envs::project(
        "[isolation.prod]\nhosts = [\"127.0.0.2/32\"]\n",
        "",
        &format!(
            "[[probe]]\nname = \"storage\"\nkind = \"s3\"\ntarget = \"s3://orders\"\nendpoint = \"http://127.0.0.1:{}\"\n",
            closed.port
        ),
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "a.b.c").unwrap();
    let out = assert_cmd::Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir.path())
        .env_clear()
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app")
        .env("AWS_ENDPOINT_URL_STS", format!("https://127.0.0.2:{sts_port}"))
        .args(["check", "--env", "staging", "--format", "json"])
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let r = report["environments"][0]["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "storage"))
        .unwrap_or_else(|| panic!("{all}"));
    let m = r["message"].as_str().unwrap_or_default();
    assert!(
        m.starts_with("isolation: ") && m.contains("127.0.0.2") && m.contains("prod"),
        "{m}"
    );
    // Nothing was dialed: the listener never saw a connection.
    sts.set_nonblocking(true).unwrap();
    assert!(sts.accept().is_err(), "STS at 127.0.0.2 was dialed");
}

#[test]
fn s3_takes_the_instance_profile_from_imdsv2_when_nothing_else_is_set() {
    // moto answers the instance metadata service's IMDSv2 calls (token,
    // role, keys) on its own port: AWS_METADATA_ENDPOINT points the chain
    // there instead of 169.254.169.254. Its keys are not IAM users', so
    // authentication stays off; the request path is the real one.
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("imds").replace('_', "-");
    moto_iam_with(&base, None, &bucket, "\"s3:*\"", false);
    let dir = project(&format!(
        "kind = \"s3\"\ntarget = \"s3://{bucket}/app-\"\nendpoint = \"{base}\"\nwrite = true\n"
    ));
    let (status, message, all) = check(dir.path(), &[("AWS_METADATA_ENDPOINT", base.as_str())]);
    assert_eq!(status, "pass", "{all}");
    assert!(
        message.contains("the EC2 instance profile through IMDSv2") && message.contains("canary put"),
        "{message}"
    );
    // Nothing answers where the metadata service should be: `auth`, and
    // the message says which source failed and how.
    let closed = ClosedPort::new();
    let nowhere = format!("http://127.0.0.1:{}", closed.port);
    let (status, message, all) = check(dir.path(), &[("AWS_METADATA_ENDPOINT", nowhere.as_str())]);
    assert_eq!(status, "fail", "{all}");
    assert!(
        message.starts_with("auth: S3") && message.contains("no credentials") && message.contains("refused"),
        "{message}"
    );
}
