//! `[probe.load]` on object stores, through the built binary against the
//! emulators services/storage.rs starts (moto for S3, Azurite for Azure
//! Blob Storage, fake-gcs-server for GCS), each test with its own server,
//! bucket or container, removed at the end. After every write load the
//! bucket is listed: no canary may be left, whatever stopped the load.
//! A GCS write load is not run here: fake-gcs-server takes no XML API
//! uploads (the probe's unit tests check its parameters, and objects.rs's
//! its round trips).

use std::path::Path;

use serde_json::Value;

use super::storage::{DEV_KEY, azurite, fake_gcs};
use super::support::*;

/// A project whose one environment, `prod`, runs the one probe's load:
/// `probe` is the `[[probe]]` table's parameters, `load` its `[probe.load]`.
fn project(probe: &str, load: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"t\"\nenvironments = [\"prod\"]\n");
    w("environments/base.toml", "");
    w("environments/prod.toml", "");
    w(
        "checks/probes.toml",
        &format!("[[probe]]\nname = \"storage\"\n{probe}\nload_envs = [\"prod\"]\n\n[probe.load]\n{load}\n"),
    );
    dir
}

/// `envgate check --env prod --format json` and `extra`: the exit code,
/// the probe's result and everything printed.
fn check(dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    let out = assert_cmd::Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .args(["check", "--env", "prod", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let r = report["environments"][0]["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "storage"))
        .unwrap_or_else(|| panic!("no `storage` result: {all}"))
        .clone();
    (out.status.code().unwrap_or(-1), r, all)
}

/// A bucket in moto (authentication off) with `app-health/ping.txt` in it
/// when `with_object`; the returned guard empties and removes it.
fn s3_bucket(base: &str, bucket: &str, with_object: bool) -> Cleanup {
    python(&format!(
        r#"import boto3
s3 = boto3.client("s3", endpoint_url="{base}", aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1")
s3.create_bucket(Bucket="{bucket}")
if {with_object}:
    s3.put_object(Bucket="{bucket}", Key="app-health/ping.txt", Body=b"pong")
"#,
        with_object = if with_object { "True" } else { "False" },
    ));
    let (base, bucket) = (base.to_string(), bucket.to_string());
    Cleanup(Box::new(move || {
        python(&format!(
            r#"import boto3
s3 = boto3.client("s3", endpoint_url="{base}", aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1")
for o in s3.list_objects_v2(Bucket="{bucket}").get("Contents", []):
    s3.delete_object(Bucket="{bucket}", Key=o["Key"])
s3.delete_bucket(Bucket="{bucket}")
"#
        ));
    }))
}

/// Every key in the bucket.
fn s3_keys(base: &str, bucket: &str) -> Vec<String> {
    python(&format!(
        r#"import boto3
s3 = boto3.client("s3", endpoint_url="{base}", aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1")
for o in s3.list_objects_v2(Bucket="{bucket}").get("Contents", []):
    print(o["Key"])
"#
    ))
    .lines()
    .map(String::from)
    .collect()
}

fn s3_probe(base: &str, bucket: &str, extra: &str) -> String {
    format!(
        "kind = \"s3\"\ntarget = \"s3://{bucket}/app-\"\nendpoint = \"{base}\"\naccess_key = \"AKIAEXAMPLE\"\nsecret_key = \"example-secret\"\n{extra}"
    )
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn an_s3_get_load_passes_its_budgets_with_measured_percentiles() {
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("lg").replace('_', "-");
    let _bucket = s3_bucket(&base, &bucket, true);
    let dir = project(
        &s3_probe(&base, &bucket, "load_object = \"health/ping.txt\""),
        "requests = 40\nconcurrency = 4\nwarmup = 2\np99 = \"5s\"\nmax_error_rate = \"0%\"",
    );
    let (code, r, all) = check(dir.path(), &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["status"], "pass", "{r}");
    let load = &r["load"];
    assert_eq!(
        (load["count"].as_u64(), load["errors"].as_u64()),
        (Some(40), Some(0)),
        "{load}"
    );
    let (p50, p95, p99, max) = (
        f(&load["p50_ms"]),
        f(&load["p95_ms"]),
        f(&load["p99_ms"]),
        f(&load["max_ms"]),
    );
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{load}");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.starts_with("load: 40 requests, 4 at once")
            && msg.contains(&format!("p50 {}", fmt_ms(p50)))
            && msg.contains("budgets hold (p99 ≤ 5s, error rate ≤ 0%)"),
        "{msg}"
    );
    assert!(!all.contains("example-secret"), "the secret key leaked:\n{all}");
    assert_eq!(s3_keys(&base, &bucket), ["app-health/ping.txt"]);
}

/// As the load's messages print a latency.
fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

#[test]
fn an_s3_write_load_reports_its_count_and_leaves_no_canary_behind() {
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("lw").replace('_', "-");
    let _bucket = s3_bucket(&base, &bucket, false);
    let dir = project(
        &s3_probe(&base, &bucket, "write = true\nload_object_size = \"4KiB\""),
        "requests = 30\nconcurrency = 3\nmax_error_rate = \"0%\"",
    );
    let (code, r, all) = check(dir.path(), &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(r["load"]["count"], 30, "{r}");
    assert_eq!(r["load"]["errors"], 0, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("load: 30 requests, 3 at once"),
        "{r}"
    );
    let left = s3_keys(&base, &bucket);
    assert!(left.is_empty(), "canaries left behind: {left:?}");
}

#[test]
fn an_s3_write_load_cut_short_by_the_runs_deadline_still_deletes_every_canary() {
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("ld").replace('_', "-");
    let _bucket = s3_bucket(&base, &bucket, false);
    let dir = project(
        &s3_probe(&base, &bucket, "write = true"),
        "requests = 1000000\nconcurrency = 4",
    );
    // At the deadline every worker is in the middle of a round trip: its
    // request is cut (a timeout error) and its canary may be in the bucket;
    // the cleanup after the load deletes it.
    let (_, r, all) = check(dir.path(), &["--wait", "3s"]);
    assert_eq!(r["status"], "warn", "{all}");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.contains("stopped early: the run's deadline came before the load's bound"),
        "{msg}"
    );
    assert!(r["load"]["count"].as_u64().unwrap() > 0, "{r}");
    let left = s3_keys(&base, &bucket);
    assert!(left.is_empty(), "canaries left behind: {left:?}");
}

#[test]
fn a_load_of_a_missing_object_fails_its_error_rate_budget_with_not_found_errors() {
    let moto = Server::moto();
    let base = format!("http://127.0.0.1:{}", moto.port);
    let bucket = unique("lm").replace('_', "-");
    let _bucket = s3_bucket(&base, &bucket, true);
    let dir = project(
        &s3_probe(&base, &bucket, "load_object = \"health/missing.txt\""),
        "requests = 20\nconcurrency = 2\nmax_error_rate = \"1%\"",
    );
    let (code, r, all) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(r["status"], "fail", "{r}");
    let load = &r["load"];
    assert_eq!(load["count"], 20, "{load}");
    assert_eq!(load["errors"], 20, "{load}");
    assert_eq!(load["errors_by_class"]["not_found"], 20, "{load}");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.starts_with("not_found: error rate 100.0% is over its budget of 1%"),
        "{msg}"
    );
    assert!(
        msg.contains("20 errors (20 not_found)")
            && msg.contains(&format!(
                "object `app-health/missing.txt` does not exist in bucket `{bucket}`"
            )),
        "{msg}"
    );
}

/// A container in Azurite; the returned guard removes it.
fn azure_container(port: u16, container: &str) -> Cleanup {
    let cs = azure_cs(port);
    python(&format!(
        r#"from azure.storage.blob import BlobServiceClient
BlobServiceClient.from_connection_string("{cs}").create_container("{container}")
"#
    ));
    let container = container.to_string();
    Cleanup(Box::new(move || {
        python(&format!(
            r#"from azure.storage.blob import BlobServiceClient
BlobServiceClient.from_connection_string("{cs}").delete_container("{container}")
"#
        ));
    }))
}

fn azure_cs(port: u16) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
}

#[test]
fn an_azblob_write_load_leaves_no_canary_behind_and_a_missing_blob_is_not_found() {
    let az = azurite();
    let container = unique("lw").replace('_', "-");
    let _container = azure_container(az.port, &container);
    let dir = project(
        &format!(
            "kind = \"azblob\"\ntarget = \"az://{container}/app-\"\nconnection_string = \"{}\"\nwrite = true\nload_object_size = \"2KiB\"",
            azure_cs(az.port)
        ),
        "requests = 30\nconcurrency = 3\nmax_error_rate = \"0%\"",
    );
    let (code, r, all) = check(dir.path(), &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(r["load"]["count"], 30, "{r}");
    assert_eq!(r["load"]["errors"], 0, "{r}");
    assert!(!all.contains(DEV_KEY), "the account key leaked:\n{all}");
    let left = python(&format!(
        r#"from azure.storage.blob import BlobServiceClient
for b in BlobServiceClient.from_connection_string("{}").get_container_client("{container}").list_blobs():
    print(b.name)
"#,
        azure_cs(az.port)
    ));
    assert!(left.trim().is_empty(), "canaries left behind: {left}");

    // A GET load of a blob that is not there: every request `not_found`.
    let dir = project(
        &format!(
            "kind = \"azblob\"\ntarget = \"az://{container}/app-\"\nconnection_string = \"{}\"\nload_object = \"health/missing.txt\"",
            azure_cs(az.port)
        ),
        "requests = 10\nconcurrency = 2\nmax_error_rate = \"1%\"",
    );
    let (code, r, all) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(r["load"]["errors_by_class"]["not_found"], 10, "{r}");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.starts_with("not_found: error rate 100.0% is over its budget of 1%")
            && msg.contains(&format!(
                "blob `app-health/missing.txt` does not exist in container `{container}`"
            )),
        "{msg}"
    );
}

#[test]
fn a_gcs_get_load_passes_its_budgets() {
    let gcs = fake_gcs();
    let base = format!("http://127.0.0.1:{}", gcs.port);
    let bucket = unique("lg").replace('_', "-");
    python(&format!(
        r#"import json, urllib.request
req = urllib.request.Request("{base}/storage/v1/b?project=t", data=json.dumps({{"name": "{bucket}"}}).encode(), headers={{"Content-Type": "application/json"}})
urllib.request.urlopen(req)
req = urllib.request.Request("{base}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=app-health/ping.txt", data=b"pong", headers={{"Content-Type": "text/plain"}})
urllib.request.urlopen(req)
"#
    ));
    let _bucket = Cleanup(Box::new({
        let (base, bucket) = (base.clone(), bucket.clone());
        move || {
            python(&format!(
                r#"import urllib.request
for url in ["{base}/storage/v1/b/{bucket}/o/app-health%2Fping.txt", "{base}/storage/v1/b/{bucket}"]:
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE"))
"#
            ));
        }
    }));
    let dir = project(
        &format!(
            "kind = \"gcs\"\ntarget = \"gs://{bucket}/app-\"\nendpoint = \"{base}\"\nanonymous = true\nload_object = \"health/ping.txt\""
        ),
        "requests = 30\nconcurrency = 3\np95 = \"5s\"\nmax_error_rate = \"0%\"",
    );
    let (code, r, all) = check(dir.path(), &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["status"], "pass", "{r}");
    let load = &r["load"];
    assert_eq!(
        (load["count"].as_u64(), load["errors"].as_u64()),
        (Some(30), Some(0)),
        "{load}"
    );
    assert!(f(&load["p50_ms"]) > 0.0, "{load}");
}
