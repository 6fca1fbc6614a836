//! The Kubernetes recipe: the Deployment and Service against the Kubernetes
//! API schemas (kubernetes-validate ships them: no network), and the
//! ServiceMonitor (a custom resource, whose schema it does not ship)
//! against the Service it must select.

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const SETUP: &str = "run `sudo bash scripts/setup/serve.sh`";

fn path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/deployment.yaml")
}

#[test]
fn the_deployment_and_service_pass_the_kubernetes_api_schemas() {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.30.0"])
        .arg(path())
        .output()
        .unwrap_or_else(|e| panic!("kubernetes-validate ({e}): {SETUP}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
    assert!(text.contains("passed for resource deployment/envgate-serve"), "{text}");
    assert!(text.contains("passed for resource service/envgate-serve"), "{text}");
}

#[test]
fn the_deployment_is_ready_on_readyz_scraped_on_metrics_and_selected_by_its_service_monitor() {
    let docs = YamlLoader::load_from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let kind = |k: &str| docs.iter().find(|d| d["kind"].as_str() == Some(k)).unwrap().clone();
    let (dep, svc, mon) = (kind("Deployment"), kind("Service"), kind("ServiceMonitor"));
    let pod = &dep["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    let ann = &pod["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(ann["prometheus.io/path"].as_str(), Some("/metrics"));
    let port = c["ports"][0]["containerPort"].as_i64().unwrap();
    assert_eq!(ann["prometheus.io/port"].as_str(), Some(port.to_string().as_str()));
    let args: Vec<&str> = c["args"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(
        args.windows(2).any(|w| w == ["--listen", &format!("0.0.0.0:{port}")]),
        "{args:?}"
    );
    // The args parse as `envgate serve` flags.
    let help = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "envgate serve has no {flag}");
    }
    let token = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("ENVGATE_TOKEN"))
        .unwrap();
    assert!(
        !token["valueFrom"]["secretKeyRef"].is_badvalue(),
        "the token comes from a Secret"
    );
    // The Service selects the pods; the ServiceMonitor selects the Service
    // and scrapes its named port.
    let pod_labels = &pod["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_hash().unwrap() {
        assert_eq!(&pod_labels[k.as_str().unwrap()], v);
    }
    for (k, v) in mon["spec"]["selector"]["matchLabels"].as_hash().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k.as_str().unwrap()], v);
    }
    let svc_port = svc["spec"]["ports"][0]["name"].as_str().unwrap();
    assert_eq!(mon["spec"]["endpoints"][0]["port"].as_str(), Some(svc_port));
    assert_eq!(mon["spec"]["endpoints"][0]["path"].as_str(), Some("/metrics"));
}
