//! Environment isolation (a staging box must never reach production): which hosts belong to which
//! environment, and whether a value or a probe target crosses over.
//! Pure functions: no DNS, no network. The probe plan asks [`HostMap::verdict`]
//! about every host a probe will dial and every address it resolves to; the
//! rule asks it about every host any string of the configuration names, read
//! the one way envgate reads addresses (`crate::net::address`).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::manifest::Manifest;
use crate::diagnostic::Problem;
use crate::net::address::{self, canonical};

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
            return Some(Pattern::Net(canonical_net(net)));
        }
        if let Ok(ip) = t.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(Pattern::Net(IpNet::from(canonical(ip))));
        }
        if let Some(rest) = t.strip_prefix("*.") {
            return valid_host(rest).then(|| Pattern::Suffix(format!(".{}", name(rest))));
        }
        valid_host(&t).then(|| Pattern::Exact(name(&t)))
    }

    /// `host` is normalised ([`address::normalise`]): addresses compare as
    /// addresses, IPv4-mapped IPv6 as IPv4.
    fn matches(&self, host: &str) -> bool {
        match self {
            Pattern::Suffix(s) => host.ends_with(s.as_str()),
            Pattern::Exact(e) => host == e,
            Pattern::Net(n) => host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| n.contains(&canonical(ip))),
        }
    }
}

fn valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && !s.contains('*')
}

/// A pattern's name as hosts are compared: lowercase, no trailing dot.
fn name(s: &str) -> String {
    address::normalise(s).unwrap_or_else(|| s.trim_end_matches('.').to_string())
}

/// `::ffff:10.20.0.0/112` is the IPv4 network 10.20.0.0/16.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, n.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

/// One environment's patterns (as written, parsed) and `deny_unknown_hosts`.
type EnvHosts = (String, Vec<(String, Pattern)>, bool);

/// The isolation declared in the manifest.
#[derive(Debug, Clone, Default)]
pub struct HostMap {
    envs: Vec<EnvHosts>,
    /// Exact patterns without a dot (`cache-prod`): the only patterns a
    /// single word in free text can match.
    words: std::collections::HashSet<String>,
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
        let words = envs
            .iter()
            .flat_map(|(_, pats, _)| pats.iter())
            .filter_map(|(_, p)| match p {
                Pattern::Exact(e) if !e.contains('.') => Some(e.clone()),
                _ => None,
            })
            .collect();
        if problems.is_empty() {
            Ok(HostMap { envs, words, opted_out })
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

    /// Where `host` (a name or an address, in any spelling) stands for `env`.
    pub fn verdict(&self, env: &str, host: &str) -> Verdict {
        let host = address::normalise(host).unwrap_or_else(|| host.trim_end_matches('.').to_ascii_lowercase());
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
        let host_key = path.last().is_some_and(|k| names_a_host(k));
        for s in strings {
            for found in address::hosts_at(s, host_key) {
                // A name in prose (`pg_dump -h db.prod.example.com`) is
                // checked against other environments; a single word only
                // when another environment declares that very word.
                let word = !found.name.contains(['.', ':']);
                if !found.certain && word && !map.words.contains(&found.name) {
                    continue;
                }
                let host = found.name;
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
                    // A single word in free text may not be a host at all:
                    // only a declared name of another environment counts.
                    Verdict::Unknown { denied: true } if found.certain => (
                        format!(
                            "`{}` names {host}, which belongs to no environment, and [isolation.{}] sets deny_unknown_hosts",
                            key_string(&path),
                            a.env
                        ),
                        "unknown host".to_string(),
                    ),
                    _ => continue,
                };
                let shown = match crate::config::secrets::mask_value(
                    &leaf.value,
                    leaf.secret,
                    &crate::config::secrets::Redactor::default(),
                ) {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
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

/// A key whose value is a host even when it is a single word (`db.host = "db"`).
fn names_a_host(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "host", "server", "endpoint", "addr", "broker", "sentinel", "seed", "node",
    ]
    .iter()
    .any(|w| k.contains(w))
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
                schema_dirs: Vec::new(),
                formats: Default::default(),
                strict: true,
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

    /// The environment of the first foreign host `value` names, if any.
    fn crosses_into(m: &HostMap, value: &str) -> Option<String> {
        address::hosts_in(value)
            .into_iter()
            .find_map(|h| match m.verdict("staging", &h.name) {
                Verdict::Foreign { env, .. } => Some(env),
                _ => None,
            })
    }

    #[test]
    fn a_prod_address_is_caught_in_every_form_staging_writes_it() {
        let m = map();
        for value in [
            "host=db.prod.example.com port=5432 dbname=orders",
            "host=db.stg.example.com,db.prod.example.com port=5432",
            "hostaddr=10.20.1.5 host=db.stg.example.com",
            "postgres:///orders?host=10.20.1.5",
            "jdbc:postgresql://db.stg.example.com,db.prod.example.com/orders",
            "app:pw@tcp(db.prod.example.com:3306)/orders",
            "k1.stg.example.com:9092,k2.prod.example.com:9092",
            "mongodb://a.stg.example.com,b.prod.example.com/x",
            "redis+sentinel://s1.prod.example.com:26379,s2.prod.example.com:26379/mymaster",
            "http://169083141:8000/",
            "http://10.20.261/",
            "http://0xa.0x14.1.5/",
            "http://%31%30.20.1.5/",
            "http://[::ffff:10.20.1.5]/",
            "http://10.20.1.5\\@api.stg.example.com/",
            "s3://orders?endpoint=http://10.20.1.5:9000",
            "::ffff:10.20.1.5",
            "[fd00:20::5]:6379",
            "DB.PROD.EXAMPLE.COM.",
        ] {
            assert_eq!(crosses_into(&m, value).as_deref(), Some("prod"), "{value}");
        }
        assert_eq!(crosses_into(&m, "postgres://db.stg.example.com/orders"), None);
        assert_eq!(crosses_into(&m, "http://api.stg.example.com\\@10.20.1.5/"), None);
    }

    #[test]
    fn a_mapped_ipv6_pattern_is_its_ipv4_network() {
        let mut m = Manifest {
            project: Project {
                name: "x".into(),
                schema: None,
                environments: None,
                environments_dir: "environments".into(),
                checks_dir: "checks".into(),
                schema_dirs: Vec::new(),
                formats: Default::default(),
                strict: true,
            },
            source: vec![],
            isolation: Default::default(),
            parity: None,
            audit: None,
        };
        m.isolation.insert(
            "prod".into(),
            Isolation {
                hosts: vec!["::ffff:10.20.0.0/112".into()],
                deny_unknown_hosts: false,
                enforce: true,
            },
        );
        let m = HostMap::from_manifest(&m).unwrap();
        assert!(matches!(m.verdict("staging", "10.20.9.9"), Verdict::Foreign { .. }));
        assert!(matches!(
            m.verdict("staging", "::ffff:10.20.9.9"),
            Verdict::Foreign { .. }
        ));
        assert_eq!(m.verdict("staging", "10.21.0.1"), Verdict::Unknown { denied: false });
    }
}
