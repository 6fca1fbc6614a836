//! A database probe's `query` reads and never writes, whatever it says,
//! against the real PostgreSQL and MariaDB; a missing table points at its
//! entry in the check file and names the closest table that exists.

use std::process::Command;

use envgate::outcome::Status;
use envgate::probes::{self, ProbeDef};

use super::support::*;

/// One value from PostgreSQL, as the `postgres` superuser.
fn psql_value(db: &str, sql: &str) -> String {
    let uid = uid_of("postgres");
    use std::os::unix::process::CommandExt;
    run(Command::new("psql")
        .args(["-X", "-tA", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql])
        .current_dir("/")
        .uid(uid)
        .gid(uid_gid(uid)))
    .trim()
    .to_string()
}

fn mariadb_value(sql: &str) -> String {
    run(Command::new("mariadb").args(["-uroot", "-N", "-B", "-e", sql]))
        .trim()
        .to_string()
}

/// Building the probe: the refusal a user sees for `query`, if any.
fn refusal(kind: &str, target: &str, query: &str) -> Option<String> {
    let mut d = ProbeDef::new(kind);
    d.set("query", query.to_string());
    let spec = probes::Spec {
        target,
        params: &d.params,
    };
    match (probes::kind(kind).unwrap().build)(&spec) {
        Ok(_) => None,
        Err(e) => {
            assert_eq!(e.param, "query");
            Some(e.message)
        }
    }
}

/// A database of its own with a table `t` of one row and a function that
/// writes a row when selected.
struct PgDb(String);

impl PgDb {
    fn new() -> PgDb {
        let db = unique("ro");
        psql(&format!("CREATE DATABASE {db}"));
        psql_db(
            &db,
            "CREATE TABLE t (i int); INSERT INTO t VALUES (1); \
             CREATE FUNCTION w() RETURNS int AS 'INSERT INTO t VALUES (2) RETURNING 2' LANGUAGE sql",
        );
        PgDb(db)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

#[tokio::test]
async fn a_postgres_query_that_chains_a_write_is_refused_and_creates_no_table() {
    let db = PgDb::new();
    let url = format!("postgres://postgres@127.0.0.1:5432/{}", db.0);
    let why = refusal("postgres", &url, "SELECT 1; COMMIT; CREATE TABLE x (i int)").unwrap();
    assert!(why.contains("more than one statement"), "{why}");
    let why = refusal("postgres", &url, "CREATE TABLE x (i int)").unwrap();
    assert!(why.contains("starts with CREATE"), "{why}");
    // What passes the check is still one statement in a read-only
    // transaction: a SELECT whose function writes is refused by the server.
    let f = probe("postgres", &url, |d| {
        d.set("query", "SELECT w()".to_string());
        d.set("expect", serde_json::json!(2));
    })
    .await;
    assert_status(&f, Status::Fail, "read-only transaction");
    let f = probe("postgres", &url, |d| {
        d.set(
            "query",
            "WITH d AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM d".to_string(),
        );
    })
    .await;
    assert_status(&f, Status::Fail, "read-only transaction");
    assert_eq!(psql_value(&db.0, "SELECT to_regclass('x') IS NULL"), "t");
    assert_eq!(psql_value(&db.0, "SELECT string_agg(i::text, ',') FROM t"), "1");
    // A read passes, with numbers compared as a person reads them.
    let f = probe("postgres", &url, |d| {
        d.set("query", "SELECT sum(i)::numeric(10,2) FROM t".to_string());
        d.set("expect", serde_json::json!("1.00"));
    })
    .await;
    assert_status(&f, Status::Pass, "SELECT 1");
}

#[tokio::test]
async fn a_mysql_query_that_chains_a_write_is_refused_and_creates_no_table() {
    let db = unique("ro");
    mariadb(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (i int); INSERT INTO {db}.t VALUES (1)"
    ));
    // The function's body holds semicolons: another statement delimiter.
    run(Command::new("mariadb").args([
        "-uroot",
        "--delimiter=//",
        "-e",
        &format!(
            "CREATE FUNCTION {db}.w() RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO {db}.t VALUES (2); RETURN 2; END"
        ),
    ]));
    let _drop = Cleanup(Box::new({
        let db = db.clone();
        move || mariadb(&format!("DROP DATABASE IF EXISTS {db}"))
    }));
    let url = format!("mysql://root@127.0.0.1:3306/{db}");
    let why = refusal("mysql", &url, "SELECT 1; CREATE TABLE x (i int)").unwrap();
    assert!(why.contains("more than one statement"), "{why}");
    let why = refusal("mysql", &url, "SELECT 1 INTO OUTFILE '/tmp/envgate-x'").unwrap();
    assert!(why.contains("INTO"), "{why}");
    let f = probe("mysql", &url, |d| {
        d.set("query", "SELECT w()".to_string());
        d.set("expect", serde_json::json!(2));
    })
    .await;
    assert_status(&f, Status::Fail, "READ ONLY transaction");
    assert_eq!(
        mariadb_value(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}' AND table_name = 'x'"
        )),
        "0"
    );
    assert_eq!(mariadb_value(&format!("SELECT GROUP_CONCAT(i) FROM {db}.t")), "1");
}

#[test]
fn a_missing_table_points_at_its_entry_and_names_the_closest_one() {
    let db = PgDb::new();
    psql_db(&db.0, "CREATE TABLE invoices (i int)");
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"q\"\nenvironments = [\"t\"]\n");
    w("environments/base.toml", "");
    w(
        "environments/t.toml",
        &format!("[db]\nurl = \"postgres://postgres@127.0.0.1:5432/{}\"\n", db.0),
    );
    w(
        "checks/db.toml",
        "[[probe]]\nname = \"db\"\nkind = \"postgres\"\ntarget = \"${db.url}\"\n\
         tables = [\n  \"t\",\n  \"invoice\",\n]\n",
    );
    let out = assert_cmd::Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .args(["check", "--env", "t", "--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "probe/db")
        .unwrap()
        .clone();
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("table `invoice` does not exist in database")
            && r["message"].as_str().unwrap().contains("(did you mean `invoices`?)"),
        "{r}"
    );
    assert_eq!(r["location"]["file"], "checks/db.toml", "{r}");
    assert_eq!(r["location"]["line"], 7, "{r}");
    assert_eq!(r["location"]["column"], 3, "{r}");
}
