//! Environment isolation (a staging box must never reach production): which hosts belong to which
//! environment, and whether a value or a probe target crosses over.
//! Pure functions: no DNS, no network. Probes use [`HostMap::verdict`] before
//! they connect; rules use it on every string of the assembled configuration.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::manifest::Manifest;
use crate::diagnostic::Problem;

#[derive(Debug, Clone)]
enum Pattern {
    /// `*.prod.example.com`: any subdomain (not the apex).
    Suffix(String),
    Exact(String),
    Net(IpNet),
}

impl Pattern {
    fn parse(s: &str) -> Option<Pattern> {
        let t = s.trim().to_ascii_lowercase();
        if let Ok(net) = t.parse::<IpNet>() {
            return Some(Pattern::Net(net));
        }
        if let Ok(ip) = t.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(Pattern::Net(IpNet::from(ip)));
        }
        if let Some(rest) = t.strip_prefix("*.") {
            return valid_host(rest).then(|| Pattern::Suffix(format!(".{rest}")));
        }
        valid_host(&t).then_some(Pattern::Exact(t))
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Pattern::Suffix(s) => host.ends_with(s.as_str()),
            Pattern::Exact(e) => host == e,
            Pattern::Net(n) => host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| n.contains(&ip)),
        }
    }
}

fn valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && !s.contains('*')
}

/// One environment's patterns (as written, parsed) and `deny_unknown_hosts`.
type EnvHosts = (String, Vec<(String, Pattern)>, bool);

/// The isolation declared in the manifest.
#[derive(Debug, Clone, Default)]
pub struct HostMap {
    envs: Vec<EnvHosts>,
    /// Environments that opted out (`enforce = false`), e.g. `local`.
    opted_out: Vec<String>,
}

/// Where a host stands for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Declared for this environment.
    Own,
    /// Declared for another environment: never connect.
    Foreign { env: String, pattern: String },
    /// Declared nowhere; `denied` when this environment sets `deny_unknown_hosts`.
    Unknown { denied: bool },
}

impl HostMap {
    pub fn from_manifest(m: &Manifest) -> Result<HostMap, Vec<Problem>> {
        let mut envs = Vec::new();
        let mut opted_out = Vec::new();
        let mut problems = Vec::new();
        for (env, iso) in &m.isolation {
            let mut pats = Vec::new();
            for h in &iso.hosts {
                match Pattern::parse(h) {
                    Some(p) => pats.push((h.clone(), p)),
                    None => problems.push(
                        Problem::new("envgate::manifest::isolation", format!("[isolation.{env}]: `{h}` is not a host pattern"))
                            .help("write an exact name (db.example.com), a subdomain glob (*.prod.example.com) or a CIDR (10.20.0.0/16, fd00::/8)"),
                    ),
                }
            }
            envs.push((env.clone(), pats, iso.deny_unknown_hosts));
            if !iso.enforce {
                opted_out.push(env.clone());
            }
        }
        if problems.is_empty() {
            Ok(HostMap { envs, opted_out })
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// `false` for an environment whose `[isolation.<env>]` says `enforce = false`.
    pub fn enforced(&self, env: &str) -> bool {
        !self.opted_out.iter().any(|e| e == env)
    }

    pub fn verdict(&self, env: &str, host: &str) -> Verdict {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut own = false;
        for (name, pats, _) in &self.envs {
            if let Some((raw, _)) = pats.iter().find(|(_, p)| p.matches(&host)) {
                if name == env {
                    own = true;
                } else {
                    return Verdict::Foreign {
                        env: name.clone(),
                        pattern: raw.clone(),
                    };
                }
            }
        }
        if own {
            Verdict::Own
        } else {
            let denied = self.envs.iter().any(|(name, _, deny)| name == env && *deny);
            Verdict::Unknown { denied }
        }
    }
}

/// Hosts named in a configuration string: URLs and DSNs
/// (`postgres://u:p@db.example.com:5432/x`), `host:port`, `[v6]:port`, bare
/// IPs and dotted host names. Plain words and paths yield nothing.
pub fn hosts_in(value: &str) -> Vec<String> {
    let v = value.trim();
    if v.is_empty() || v.contains(char::is_whitespace) && !v.contains("://") {
        return Vec::new();
    }
    if let Some((_, rest)) = v.split_once("://") {
        // authority = [userinfo@]host[:port][,host2[:port]...]
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        return authority.split(',').filter_map(host_of).collect();
    }
    if let Ok(ip) = v.trim_matches(['[', ']']).parse::<IpAddr>() {
        return vec![ip.to_string()];
    }
    host_of(v)
        .filter(|h| h.contains('.') || h.contains(':') || h == "localhost")
        .into_iter()
        .collect()
}

fn host_of(hp: &str) -> Option<String> {
    let hp = hp.trim();
    if hp.is_empty() {
        return None;
    }
    let host = if let Some(rest) = hp.strip_prefix('[') {
        rest.split(']').next()?.to_string()
    } else if hp.matches(':').count() > 1 {
        // a bare IPv6 literal
        hp.parse::<IpAddr>().ok()?.to_string()
    } else {
        let (h, port) = match hp.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        };
        if port.is_some_and(|p| !p.chars().all(|c| c.is_ascii_digit())) {
            return None;
        }
        h.to_string()
    };
    let host = host.to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() {
        return Some(host);
    }
    // Host names: letters, digits, '-', '.', '_'; not a file name like `a.toml`.
    let ok = valid_host(&host)
        && !host.starts_with('.')
        && !host.ends_with('.')
        && host.chars().any(|c| c.is_ascii_alphabetic())
        && !looks_like_file(&host);
    ok.then_some(host)
}

fn looks_like_file(h: &str) -> bool {
    const EXT: &[&str] = &[
        "toml", "json", "yaml", "yml", "txt", "log", "pem", "crt", "key", "conf", "sql", "env", "html", "csv",
    ];
    h.rsplit('.').next().is_some_and(|e| EXT.contains(&e))
}

/// Every string of an environment's configuration that names a host of
/// another environment (or, with `deny_unknown_hosts`, of none).
pub fn check_config(map: &HostMap, a: &crate::config::assemble::Assembled) -> Vec<crate::findings::Finding> {
    use crate::config::merge::key_string;
    use crate::findings::{Category, Finding};
    let mut out = Vec::new();
    if map.is_empty() || !map.enforced(&a.env) {
        return out;
    }
    for (path, leaf) in a.root.leaves() {
        let mut strings = Vec::new();
        collect(&leaf.value, &mut strings);
        for s in strings {
            for host in hosts_in(s) {
                let v = map.verdict(&a.env, &host);
                let (msg, label) = match &v {
                    Verdict::Foreign { env, pattern } => (
                        format!(
                            "`{}` names {host}, a host of `{env}` ({pattern}): `{}` must not reach `{env}`",
                            key_string(&path),
                            a.env
                        ),
                        format!("host of {env}"),
                    ),
                    Verdict::Unknown { denied: true } => (
                        format!(
                            "`{}` names {host}, which belongs to no environment, and [isolation.{}] sets deny_unknown_hosts",
                            key_string(&path),
                            a.env
                        ),
                        "unknown host".to_string(),
                    ),
                    _ => continue,
                };
                let shown = if leaf.secret {
                    crate::config::secrets::MASK.to_string()
                } else {
                    crate::config::secrets::redact_url_passwords(s)
                };
                let key = key_string(&path);
                let p = Problem::new("envgate::isolation::crossing", msg)
                    .label(label)
                    .help(format!(
                        "value: {shown}; set by {} — point it at a host of `{}`",
                        leaf.origin, a.env
                    ))
                    .at_origin(&leaf.origin);
                out.push(Finding::new(
                    Category::Isolation,
                    format!("isolation/{key}"),
                    Some(key),
                    p,
                ));
            }
        }
    }
    out
}

fn collect<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::manifest::{Isolation, Manifest, Project};

    fn map() -> HostMap {
        let mut m = Manifest {
            project: Project {
                name: "x".into(),
                schema: None,
                environments: None,
                environments_dir: "environments".into(),
                checks_dir: "checks".into(),
            },
            source: vec![],
            isolation: Default::default(),
            parity: None,
            audit: None,
        };
        m.isolation.insert(
            "prod".into(),
            Isolation {
                hosts: vec![
                    "*.prod.example.com".into(),
                    "10.20.0.0/16".into(),
                    "fd00:20::/32".into(),
                ],
                deny_unknown_hosts: false,
                enforce: true,
            },
        );
        m.isolation.insert(
            "staging".into(),
            Isolation {
                hosts: vec!["*.stg.example.com".into()],
                deny_unknown_hosts: true,
                enforce: true,
            },
        );
        HostMap::from_manifest(&m).unwrap()
    }

    #[test]
    fn extracts_hosts_from_urls_dsns_and_pairs() {
        assert_eq!(
            hosts_in("postgres://app:pw@db.prod.example.com:5432/orders"),
            ["db.prod.example.com"]
        );
        assert_eq!(hosts_in("redis://[fd00:20::5]:6379/0"), ["fd00:20::5"]);
        assert_eq!(
            hosts_in("mongodb://a.example.com:1,b.example.com:2/x"),
            ["a.example.com", "b.example.com"]
        );
        assert_eq!(hosts_in("cache.stg.example.com:6379"), ["cache.stg.example.com"]);
        assert_eq!(hosts_in("10.20.1.5"), ["10.20.1.5"]);
        assert!(hosts_in("info").is_empty());
        assert!(hosts_in("config/app.toml").is_empty());
        assert!(hosts_in("30s").is_empty());
    }

    #[test]
    fn staging_naming_a_prod_host_is_foreign() {
        let m = map();
        assert_eq!(
            m.verdict("staging", "db.prod.example.com"),
            Verdict::Foreign {
                env: "prod".into(),
                pattern: "*.prod.example.com".into()
            }
        );
        assert_eq!(m.verdict("prod", "db.prod.example.com"), Verdict::Own);
        assert!(matches!(m.verdict("staging", "10.20.3.4"), Verdict::Foreign { .. }));
        assert!(matches!(m.verdict("staging", "fd00:20::5"), Verdict::Foreign { .. }));
        assert_eq!(m.verdict("staging", "api.other.com"), Verdict::Unknown { denied: true });
        assert_eq!(m.verdict("prod", "api.other.com"), Verdict::Unknown { denied: false });
        assert_eq!(
            m.verdict("prod", "prod.example.com"),
            Verdict::Unknown { denied: false }
        );
    }
}
