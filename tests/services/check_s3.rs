//! `envgate check` with an `s3` probe whose endpoint, bucket and keys come
//! from the assembled configuration, the secret key through
//! `${secret:env:NAME}`, against the moto server: the real binary, a real
//! S3 API, and the secret nowhere in what it prints.

use assert_cmd::Command;

use super::support::*;

/// A project in a temp dir whose prod `storage` table points at `endpoint`.
fn project(endpoint: &str, bucket: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"t\"\nenvironments = [\"prod\"]\n");
    w(
        "environments/base.toml",
        &format!("[storage]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n"),
    );
    w(
        "environments/prod.toml",
        &format!(
            "[storage]\nbucket = \"{bucket}\"\naccess_key = \"${{secret:env:STORAGE_ACCESS_KEY}}\"\n\
             secret_key = \"${{secret:env:STORAGE_SECRET}}\"\n"
        ),
    );
    w(
        "checks/probes.toml",
        "[[probe]]\nname = \"storage\"\nkind = \"s3\"\ntarget = \"s3://${storage.bucket}/app-\"\n\
         endpoint = \"${storage.endpoint}\"\nbucket = \"${storage.bucket}\"\nregion = \"${storage.region}\"\n\
         access_key = \"${storage.access_key}\"\nsecret_key = \"${storage.secret_key}\"\nwrite = true\n",
    );
    dir
}

/// `check --env prod` with these keys in the process environment: exit
/// code, the probe's result (JSON) or `Null` (human), and everything printed.
fn check(dir: &std::path::Path, format: &str, keys: (&str, &str)) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("STORAGE_ACCESS_KEY", keys.0)
        .env("STORAGE_SECRET", keys.1)
        .args(["check", "--env", "prod", "--format", format])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if format != "json" {
        return (out.status.code(), serde_json::Value::Null, all);
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let result = report["environments"][0]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {all}"))
        .iter()
        .find(|r| r["name"] == "storage")
        .unwrap_or_else(|| panic!("no `storage` result: {all}"))
        .clone();
    (out.status.code(), result, all)
}

#[test]
fn check_probes_s3_with_credentials_from_the_configuration_and_never_prints_them() {
    let moto = Server::moto();
    let bucket = unique("cfg").replace('_', "-");
    let keys = moto_setup(moto.port, &bucket);
    let (ak, sk) = (keys[0].as_str(), keys[1].as_str());
    let dir = project(&format!("http://127.0.0.1:{}", moto.port), &bucket);

    let (code, r, all) = check(dir.path(), "json", (ak, sk));
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(r["status"], "pass", "{r}");
    assert!(r["message"].as_str().unwrap().contains("canary put"), "{r}");
    assert!(!all.contains(sk) && !all.contains(ak), "a key leaked:\n{all}");

    // A wrong secret key, then an unknown access key: both `auth`, and
    // neither the keys nor the wrong ones are printed, in either format.
    let wrong_sk = format!("{}Wr0ngSecretKey", &sk[..8]);
    let wrong_ak = "AKIAWR0NGACCESSKEY42";
    for keys in [(ak, wrong_sk.as_str()), (wrong_ak, sk)] {
        let (code, r, all) = check(dir.path(), "json", keys);
        assert_eq!(code, Some(1), "{all}");
        assert_eq!(r["status"], "fail", "{r}");
        assert!(r["message"].as_str().unwrap().starts_with("auth: S3"), "{r}");
        // The probe names the access key it used; the run's redactor masks
        // it because the configuration took it from `${secret:...}`.
        assert!(r["message"].as_str().unwrap().contains("access key `***`"), "{r}");
        // ...and points at the line that set the credential, not the bucket.
        assert_eq!(r["key"], "storage.secret_key", "{r}");
        assert_eq!(r["location"]["file"], "environments/prod.toml", "{r}");
        assert_eq!(r["location"]["line"], 4, "{r}");
        let (code, _, human) = check(dir.path(), "human", keys);
        assert_eq!(code, Some(1), "{human}");
        assert!(human.contains("auth: S3"), "{human}");
        for text in [all, human] {
            for secret in [ak, sk, keys.0, keys.1] {
                assert!(!text.contains(secret), "`{secret}` leaked:\n{text}");
            }
        }
    }
}
