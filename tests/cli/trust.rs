//! A green run can be trusted: rules that cannot be evaluated stop the run
//! (exit 2) instead of passing or failing for the wrong reason.

use super::*;

#[test]
fn a_cross_environment_rule_naming_no_environment_is_exit_2_with_a_suggestion() {
    let dir = rules_project(
        "[[rule]]\nid = \"pool\"\nscope = \"all-envs\"\nmessage = \"m\"\nassert = \"envs.prod.database.pool_size >= envs.stagin.database.pool_size\"\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("rule `pool` reads `envs.stagin`, but there is no environment `stagin`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("did you mean `envs.staging`?"), "{}", r.stderr);
    assert!(r.stderr.contains("checks/rules.toml:5:"), "{}", r.stderr);
}

#[test]
fn a_duration_times_a_number_is_exit_2_in_the_users_terms() {
    let dir = rules_project(
        "[[rule]]\nid = \"t\"\nmessage = \"m\"\nassert = \"config.http.timeout * 2 < duration('60s')\"\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("rule `t` cannot be evaluated: `*` does not apply to a duration and an integer"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("getMilliseconds()"), "{}", r.stderr);
    assert!(!r.stderr.contains("TimeDelta"), "{}", r.stderr);
}

#[test]
fn a_method_written_without_parentheses_is_exit_2_not_a_missing_key() {
    let dir = rules_project(
        "[[rule]]\nid = \"t\"\nmessage = \"m\"\nassert = \"config.http.timeout.getMilliseconds > 100\"\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("`getMilliseconds` is a method: write `config.http.timeout.getMilliseconds()`"),
        "{}",
        r.stderr
    );
    // and with the parentheses it is evaluated, reading http.timeout
    let dir = rules_project(
        "[[rule]]\nid = \"t\"\nmessage = \"m\"\nassert = \"config.http.timeout.getMilliseconds() > 100\"\n",
    );
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn a_rule_that_is_not_true_or_false_is_exit_2() {
    let dir = rules_project("[[rule]]\nid = \"t\"\nmessage = \"m\"\nassert = \"config.database.pool_size\"\n");
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("`assert` must be true or false, but it is an integer"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_typo_in_one_overlay_is_not_also_a_parity_failure_everywhere_else() {
    let dir = project(&[
        ("environments/staging.toml", "[database]\npool_size = 10\n"),
        ("environments/prod.toml", "[database]\npool_size = 4\npool_szie = 8\n"),
    ]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[parity]\nrequired = [\"database\"]\n",
    );
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1);
    let failing: Vec<String> = results(&r)
        .into_iter()
        .filter(|x| x["status"] == "fail")
        .map(|x| format!("{} {}", x["env"].as_str().unwrap(), x["id"].as_str().unwrap()))
        .collect();
    assert_eq!(failing, ["prod schema/database.pool_szie"], "{}", r.stdout);
}

#[test]
fn a_missing_required_key_is_reported_once_not_again_by_parity() {
    // http.timeout is required; only staging sets it.
    let dir = project(&[
        ("environments/staging.toml", "[http]\nport = 1\ntimeout = \"5s\"\n"),
        ("environments/prod.toml", "[http]\nport = 2\n"),
    ]);
    write(
        dir.path(),
        "environments/base.toml",
        "[database]\nurl = \"postgres://db.internal/app\"\npool_size = 5\n",
    );
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[parity]\nrequired = [\"http\"]\n",
    );
    let r = envgate(
        dir.path(),
        &["validate", "--env", "prod", "--env", "staging", "--format", "json"],
    );
    assert_eq!(r.code, 1);
    let failing: Vec<String> = results(&r)
        .into_iter()
        .filter(|x| x["status"] == "fail")
        .map(|x| format!("{} {}", x["env"].as_str().unwrap(), x["id"].as_str().unwrap()))
        .collect();
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert!(failing[0].starts_with("prod schema/"), "{failing:?}");
}

#[test]
fn one_mistake_in_base_is_one_annotation_naming_every_environment() {
    let dir = project(&[
        ("environments/staging.toml", ""),
        ("environments/prod.toml", ""),
        ("environments/qa.toml", ""),
    ]);
    write(
        dir.path(),
        "environments/base.toml",
        "[http]\ntimeout = 30\n\n[database]\nurl = \"postgres://db.internal/app\"\npool_size = 5\n",
    );
    let gh = envgate(dir.path(), &["validate", "--format", "github"]);
    assert_eq!(gh.code, 1);
    let errors: Vec<&str> = gh.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", gh.stdout);
    assert!(
        errors[0].contains("file=environments/base.toml,line=2,col=11,title=envgate [prod%2C qa%2C staging]"),
        "{}",
        errors[0]
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&envgate(dir.path(), &["validate", "--format", "sarif"]).stdout).unwrap();
    let found = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0]["locations"][0]["logicalLocations"].as_array().unwrap().len(),
        3
    );
    let human = envgate(dir.path(), &["validate"]);
    assert_eq!(
        human.stdout.matches("bare number 30").count(),
        2,
        "message and label, once:\n{}",
        human.stdout
    );
    assert!(human.stdout.contains("[prod, qa, staging]"), "{}", human.stdout);
    let md = envgate(dir.path(), &["validate", "--format", "markdown"]);
    assert!(md.stdout.contains("| prod, qa, staging |"), "{}", md.stdout);
    // The machine formats keep one result per environment: each is a report
    // of that environment.
    let json = envgate(dir.path(), &["validate", "--format", "json"]);
    let per_env = results(&json).into_iter().filter(|x| x["status"] == "fail").count();
    assert_eq!(per_env, 3);
}
