//! Where a piece of text says to connect, in every form users write it:
//!
//! - URLs of any scheme, with user info, `\` (read as `/` in `http(s)` URLs,
//!   as reqwest's parser does), tabs, percent-encoding, and IPv4 in any
//!   spelling (`2130706434`, `127.2`, `0x7f.0.0.2`);
//! - several hosts in one URL (`mongodb://a,b,c/`, `postgres://a:5432,b:5433/db`,
//!   `redis+sentinel://a:26379,b:26379/m`) and host-naming query parameters
//!   (`postgres:///x?host=...`, `s3://bucket?endpoint=http://...`);
//! - JDBC URLs (`jdbc:postgresql://a,b/db`, `jdbc:sqlserver://h:1433;serverName=...`,
//!   `jdbc:oracle:thin:@//h:1521/svc`) and `(HOST=h)` descriptors;
//! - libpq keyword DSNs (`host=a,b hostaddr=10.0.0.5 port=5432`) and
//!   `Server=h;Database=d` connection strings;
//! - Go MySQL DSNs (`user:pass@tcp(host:3306)/db`);
//! - `host:port`, lists of them (`a:9092,b:9092`, `a:26379 b:26379`), bare
//!   names and IPv4/IPv6 literals.
//!
//! Every host comes out as a client dials it ([`normalise`]): the URL
//! standard's host parser (the `url` crate, the one reqwest uses) decodes
//! percent-escapes, lowercases, and reads IPv4 numbers; an IPv4-mapped IPv6
//! address is its IPv4 address. Pure: no DNS.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// One host a text names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Normalised: a lowercase name without a trailing dot, or an IP address
    /// in its canonical text.
    pub name: String,
    pub port: Option<u16>,
    /// Written where only a host can stand (a URL's authority, `host=`,
    /// `tcp(...)`, `host:port`, a dotted name or an IP literal). `false` for a
    /// single word in free text, which may be a host or just a word.
    pub certain: bool,
}

/// Keys whose values are hosts, in keyword DSNs, connection strings and
/// query strings (lowercase).
const HOST_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "hosts",
    "hostname",
    "server",
    "servers",
    "servername",
    "data source",
    "address",
    "addr",
    "addrs",
    "endpoint",
    "endpoint_url",
    "endpointurl",
    "sentinel",
    "sentinels",
    "brokers",
    "bootstrap.servers",
    "bootstrap_servers",
    "seeds",
    "nodes",
];

/// `(HOST = db)`: Oracle TNS descriptors, MySQL's `address=(host=a)(port=3306)`.
static PAREN_HOST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\(\s*host\s*=\s*([^)\s]+)\s*\)").expect("valid regex"));
/// Go's MySQL driver: `[user[:password]@]tcp(host:port)/db`.
static GO_DSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:^|@)(?:tcp[46]?|udp[46]?)\(([^)]*)\)").expect("valid regex"));

/// Texts longer than this are documents, not addresses.
const MAX_LEN: usize = 64 * 1024;

/// Every host `text` names.
pub fn hosts_in(text: &str) -> Vec<Host> {
    hosts_at(text, false)
}

/// [`hosts_in`], reading bare words as host names too: for the value of a key
/// that names a host (`database.host = "db"`).
pub fn hosts_at(text: &str, host_key: bool) -> Vec<Host> {
    let mut out = Found {
        hosts: Vec::new(),
        prose: false,
    };
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_LEN {
        return out.hosts;
    }
    if text.contains('(') {
        for c in PAREN_HOST.captures_iter(text) {
            out.item(&c[1], true);
        }
    }
    // The URL standard drops tabs and newlines inside a URL: `http://10.0.\t0.5/`
    // is one URL to a client, not two words.
    let joined: String = if text.contains(['\t', '\n', '\r']) {
        text.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect()
    } else {
        String::new()
    };
    let segments: Vec<&str> = if !joined.is_empty() && joined.contains("://") && !joined.contains(' ') {
        vec![joined.as_str()]
    } else if text.contains(';') && text.contains('=') {
        // `Data Source=h;Port=1` keeps spaces inside its keys.
        text.split(';').collect()
    } else {
        // libpq DSNs and lists separate with spaces.
        text.split(char::is_whitespace).collect()
    };
    out.prose = segments.len() > 1
        && !segments
            .iter()
            .filter(|s| !s.is_empty() && !s.contains("://") && !s.contains(['=', '(']))
            .all(|s| s.split(',').all(host_like));
    for s in segments {
        out.segment(s.trim(), host_key);
    }
    out.hosts
}

/// `host` as a client dials it, or `None` when it cannot be a host.
pub fn normalise(host: &str) -> Option<String> {
    let h = host.trim();
    let h = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    if h.contains(':') {
        // An IPv6 literal, perhaps with a zone (`fe80::1%eth0`, `%25eth0` in URLs).
        let h = h.split('%').next().unwrap_or(h);
        return h
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(IpAddr::V6(ip)).to_string());
    }
    if plain_name(h) {
        // What the host parser would return unchanged: skip its work (it
        // runs for every string of every environment).
        return Some(h.trim_end_matches('.').to_string());
    }
    match url::Host::parse(h).ok()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            // The URL standard admits `,`, `(` or `=` in a name; no resolver does.
            let plausible = !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            plausible.then(|| d.to_string())
        }
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(canonical(IpAddr::V6(ip)).to_string()),
    }
}

/// A lowercase ASCII name the URL standard's host parser leaves as it is:
/// no escapes, no punycode to check, and a last label that is not a number
/// (`127.2`, `0x7f` are IPv4).
fn plain_name(h: &str) -> bool {
    let ok = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'))
        && !h.starts_with("xn--")
        && !h.contains(".xn--");
    let last = h.strip_suffix('.').unwrap_or(h).rsplit('.').next().unwrap_or_default();
    let number = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|x| x.bytes().all(|b| b.is_ascii_hexdigit()));
    ok && !number
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) reaches the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

struct Found {
    hosts: Vec<Host>,
    /// The text is prose (words that are not all hosts): a dotted name or an
    /// address in it may be a host, or a mention.
    prose: bool,
}

impl Found {
    fn push(&mut self, name: String, port: Option<u16>, certain: bool) {
        match self.hosts.iter_mut().find(|h| h.name == name) {
            Some(h) => {
                h.port = h.port.or(port);
                h.certain |= certain;
            }
            None => self.hosts.push(Host { name, port, certain }),
        }
    }

    /// One whitespace- or `;`-separated piece of the text.
    fn segment(&mut self, s: &str, host_key: bool) {
        let s = s.trim_matches(['"', '\'', ',']);
        if s.is_empty() {
            return;
        }
        if let Some(i) = s.find("://") {
            // The scheme may follow a prefix (`jdbc:`, `--url=`).
            let start = s[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | ':')))
                .map_or(0, |j| j + 1);
            self.url(&s[start..]);
            return;
        }
        if let Some((scheme, _)) = s.split_once(':')
            && matches!(
                scheme.to_ascii_lowercase().as_str(),
                "http" | "https" | "ws" | "wss" | "ftp"
            )
        {
            // `http:10.20.1.5/` and `http:\\10.20.1.5` are URLs to the URL
            // standard's parser, and so to reqwest.
            if let Ok(u) = url::Url::parse(s)
                && let Some(h) = u.host_str().and_then(normalise)
            {
                self.push(h, u.port_or_known_default(), true);
            }
            return;
        }
        if let Some(rest) = strip_prefix_ci(s, "jdbc:oracle:") {
            self.oracle(rest);
            return;
        }
        if let Some(c) = s.contains('(').then(|| GO_DSN.captures(s)).flatten() {
            self.item(&c[1], true);
            return;
        }
        if let Some((k, v)) = s.split_once('=') {
            if HOST_KEYS.contains(&k.trim().to_ascii_lowercase().as_str()) {
                self.host_values(v);
            }
            return;
        }
        for part in s.split(',') {
            self.item(part, host_key);
        }
    }

    /// A URL, or several hosts in a URL's authority.
    fn url(&mut self, raw: &str) {
        // The URL standard drops tabs and newlines anywhere in a URL.
        let t: String = raw.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
        let Some(i) = t.find("://") else { return };
        // `jdbc:postgresql://` is read as `postgresql://`.
        let scheme = t[..i].rsplit(':').next().unwrap_or_default().to_ascii_lowercase();
        if scheme == "file" || scheme.is_empty() {
            return;
        }
        let jdbc = t[..i].to_ascii_lowercase().starts_with("jdbc:");
        // An object store URL names a bucket, not a host: only its query
        // (`?endpoint=`) says where to connect.
        let bucket = matches!(scheme.as_str(), "s3" | "s3a" | "s3n" | "gs" | "az");
        // What the URL standard (and so reqwest) does for these schemes:
        // more slashes are skipped, `\` ends the authority, ports default.
        let default_port = match scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            "ftp" => Some(21),
            _ => None,
        };
        let special = default_port.is_some();
        let rest = if special {
            t[i + 3..].trim_start_matches(['/', '\\'])
        } else {
            &t[i + 3..]
        };
        // JDBC puts properties after `;` (`jdbc:sqlserver://h:1433;databaseName=x`).
        let end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#') || (special && c == '\\') || (jdbc && c == ';'))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        for part in hosts.split(',').filter(|_| !bucket) {
            let before = self.hosts.len();
            self.item(part, true);
            if let Some(h) = self.hosts.get_mut(before).filter(|h| h.port.is_none()) {
                h.port = default_port;
            }
        }
        let tail = &rest[end..];
        if let Some(props) = tail.strip_prefix(';') {
            // `jdbc:sqlserver://h:1433;serverName=...;databaseName=...`
            for p in props.split(';') {
                self.segment(p, false);
            }
        }
        if let Some(q) = tail
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or_default())
        {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                if HOST_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                    self.host_values(&v);
                }
            }
        }
    }

    /// `@host:port:sid`, `@//host:port/service`, `user/pw@host:port/service`.
    fn oracle(&mut self, rest: &str) {
        let Some((_, at)) = rest.rsplit_once('@') else { return };
        let at = at.trim_start_matches('/');
        let hp = at.split(['/', '?']).next().unwrap_or_default();
        let hp = match hp.strip_prefix('[') {
            Some(_) => hp,
            None => match hp.match_indices(':').nth(1) {
                Some((i, _)) => &hp[..i],
                None => hp,
            },
        };
        self.item(hp, true);
    }

    /// The value of a host-naming key: one host, a list, or a URL.
    fn host_values(&mut self, v: &str) {
        let v = v.trim().trim_matches(['"', '\'']);
        if v.contains("://") {
            self.url(v);
            return;
        }
        let items: Vec<&str> = v.split(',').collect();
        for (i, item) in items.iter().enumerate() {
            let item = item.trim();
            // SQL Server writes the port after a comma: `Server=tcp:db,1433`.
            if i > 0 && item.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            self.item(item.strip_prefix("tcp:").unwrap_or(item), true);
        }
    }

    /// `host`, `host:port`, `[v6]:port` or a bare IPv6 literal.
    fn item(&mut self, raw: &str, certain: bool) {
        let s = raw.trim().trim_matches(['"', '\'']);
        if s.is_empty() || s.contains(['/', '\\', '@', '=', ' ', '(', ')', '{', '}', '$', '*', '<', '>']) {
            return;
        }
        let Some((host, port)) = split_host_port(s) else { return };
        let port = match port {
            Some("") => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) => Some(p),
                // `a:b` is not an address.
                Err(_) => return,
            },
            None => None,
        };
        if host.is_empty() || looks_like_file(host) {
            return;
        }
        let digits = host.chars().all(|c| c.is_ascii_digit());
        if certain || port.is_some() && !digits {
            if let Some(n) = normalise(host) {
                self.push(n, port, true);
            }
            return;
        }
        // Free text: only what cannot be anything else is certain, and IPv4
        // written the old ways (`1.2.3` is a version, not 1.2.0.3) is not read.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.push(canonical(ip).to_string(), port, !self.prose);
            return;
        }
        let Some(n) = normalise(host) else { return };
        if n.parse::<IpAddr>().is_ok() {
            return;
        }
        let word = n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !word || !n.chars().any(|c| c.is_ascii_alphabetic()) {
            return;
        }
        let dotted = n.contains('.')
            && !n.starts_with('.')
            && n.rsplit('.')
                .next()
                .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()));
        self.push(n.clone(), port, !self.prose && (dotted || n == "localhost"));
    }
}

/// A word of a space-separated list of hosts: `host:port`, an IP literal,
/// a dotted name.
fn host_like(w: &str) -> bool {
    let w = w.trim_matches(['"', '\'', ',']);
    w.is_empty()
        || split_host_port(w).is_some_and(|(h, p)| {
            p.is_some_and(|p| p.parse::<u16>().is_ok())
                || h.parse::<IpAddr>().is_ok()
                || (h.contains('.') && !looks_like_file(h) && h.chars().any(|c| c.is_ascii_alphabetic()))
        })
}

/// `[v6]:port`, `[v6]`, a bare IPv6 literal, `host:port`, `host`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((h, Some(p))),
            None if after.is_empty() => Some((h, None)),
            None => None,
        };
    }
    if s.matches(':').count() > 1 {
        return s.split('%').next()?.parse::<Ipv6Addr>().ok().map(|_| (s, None));
    }
    Some(match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn looks_like_file(h: &str) -> bool {
    const EXT: &[&str] = &[
        "toml", "json", "yaml", "yml", "txt", "log", "pem", "crt", "key", "conf", "sql", "env", "html", "csv", "sock",
    ];
    h.contains('.')
        && h.rsplit('.')
            .next()
            .is_some_and(|e| EXT.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        hosts_in(text).into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn every_spelling_of_an_ipv4_address_is_that_address() {
        for url in [
            "http://2130706434:8000/",
            "http://127.2:8000/",
            "http://0x7f.0.0.2/",
            "http://0177.0.0.2/",
            "http://%31%32%37.0.0.2/",
            "http://[::ffff:127.0.0.2]/",
            "http://[::ffff:7f00:2]/",
            "http://127.0.0.2\\@127.0.0.1/",
            "HTTP://127.0.0.2./x",
            "http:127.0.0.2/",
            "http:///127.0.0.2/",
            "http://a;b@127.0.0.2/",
            "postgres://u;x@127.0.0.2/db",
            "https:\\\\127.0.0.2\\x",
            "http:/0x7f.0.0.2:80/",
            "http://127.0.\t0.2/",
            "https://user:pw@127.0.0.2:8443/x?y#z",
        ] {
            assert_eq!(names(url), ["127.0.0.2"], "{url}");
        }
    }

    #[test]
    fn urls_with_several_hosts_name_each() {
        assert_eq!(
            names("mongodb://u:p@a.example.com,b.example.com:27018,c.example.com/x"),
            ["a.example.com", "b.example.com", "c.example.com"]
        );
        assert_eq!(
            names("jdbc:postgresql://db1.example.com,db2.example.com:5433/orders"),
            ["db1.example.com", "db2.example.com"]
        );
        assert_eq!(
            names("redis+sentinel://:pw@s1.example.com:26379,s2.example.com:26379/mymaster"),
            ["s1.example.com", "s2.example.com"]
        );
        assert_eq!(
            names("postgres://a.example.com:5432,[fd00::5]:5433/x"),
            ["a.example.com", "fd00::5"]
        );
    }

    #[test]
    fn query_parameters_that_name_hosts_are_read() {
        assert_eq!(names("postgres:///orders?host=127.0.0.2"), ["127.0.0.2"]);
        assert_eq!(
            names("postgresql:///orders?host=db.example.com&port=5433"),
            ["db.example.com"]
        );
        assert_eq!(
            names("s3://bucket/prefix?endpoint=http%3A%2F%2F10.20.1.5%3A9000"),
            ["10.20.1.5"]
        );
        assert_eq!(names("s3://bucket?endpoint=http://0x7f.0.0.2:9000"), ["127.0.0.2"]);
    }

    #[test]
    fn keyword_dsns_and_connection_strings_name_their_hosts() {
        assert_eq!(
            names("host=db.prod.example.com port=5432 dbname=orders"),
            ["db.prod.example.com"]
        );
        assert_eq!(
            names("host=a.example.com,b.example.com hostaddr=10.20.1.5,10.20.1.6 user=x"),
            ["a.example.com", "b.example.com", "10.20.1.5", "10.20.1.6"]
        );
        assert_eq!(names("host='db' dbname=x"), ["db"]);
        assert_eq!(names("host=2130706434 dbname=x"), ["127.0.0.2"]);
        assert_eq!(
            names("Server=tcp:sql.example.com,1433;Database=x;User Id=u;Password=p;"),
            ["sql.example.com"]
        );
        assert_eq!(names("Data Source=10.20.1.5;Initial Catalog=x"), ["10.20.1.5"]);
        assert_eq!(names("Host=pg.example.com;Port=5432;Database=x"), ["pg.example.com"]);
        assert!(names("dbname=orders user=app sslmode=require").is_empty());
    }

    #[test]
    fn jdbc_go_and_descriptor_forms_name_their_hosts() {
        assert_eq!(
            names("app:pw@tcp(mysql.example.com:3306)/orders?parseTime=true"),
            ["mysql.example.com"]
        );
        assert_eq!(names("tcp([fd00::7]:3306)/x"), ["fd00::7"]);
        assert_eq!(
            names("jdbc:sqlserver://sql.example.com:1433;databaseName=x"),
            ["sql.example.com"]
        );
        assert_eq!(
            names("jdbc:sqlserver://;serverName=10.20.1.5;databaseName=x"),
            ["10.20.1.5"]
        );
        assert_eq!(
            names("jdbc:oracle:thin:@//ora.example.com:1521/svc"),
            ["ora.example.com"]
        );
        assert_eq!(
            names("jdbc:oracle:thin:scott/tiger@ora.example.com:1521:ORCL"),
            ["ora.example.com"]
        );
        assert_eq!(
            names("(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST = ora.example.com)(PORT=1521)))"),
            ["ora.example.com"]
        );
        assert_eq!(
            names("jdbc:mysql://address=(host=m1.example.com)(port=3306),address=(host=m2.example.com)/db"),
            ["m1.example.com", "m2.example.com"]
        );
    }

    #[test]
    fn host_lists_pairs_names_and_literals() {
        assert_eq!(
            names("k1.example.com:9092,k2.example.com:9092"),
            ["k1.example.com", "k2.example.com"]
        );
        assert_eq!(
            names("s1.example.com:26379 s2.example.com:26379"),
            ["s1.example.com", "s2.example.com"]
        );
        assert_eq!(names("cache.stg.example.com:6379"), ["cache.stg.example.com"]);
        assert_eq!(names("10.20.1.5"), ["10.20.1.5"]);
        assert_eq!(names("[fd00:20::5]:6379"), ["fd00:20::5"]);
        assert_eq!(names("fd00:20::5"), ["fd00:20::5"]);
        assert_eq!(names("::ffff:10.20.1.5"), ["10.20.1.5"]);
        assert_eq!(names("DB.Prod.Example.COM."), ["db.prod.example.com"]);
        assert_eq!(names("db:5432"), ["db"]);
    }

    #[test]
    fn words_paths_versions_and_durations_are_not_hosts() {
        for text in [
            "info",
            "30s",
            "1.2.3",
            "10:30",
            "config/app.toml",
            "app.toml",
            "/var/run/postgresql",
            "${database.url}",
            "a:b",
            "file:///etc/hosts",
            "",
        ] {
            assert!(
                hosts_in(text).iter().all(|h| !h.certain),
                "{text}: {:?}",
                hosts_in(text)
            );
        }
        assert_eq!(
            hosts_in("orders")[0],
            Host {
                name: "orders".into(),
                port: None,
                certain: false
            }
        );
        assert!(hosts_at("orders", true)[0].certain);
    }

    #[test]
    fn names_in_prose_are_mentions_not_certain_hosts() {
        let found = hosts_in("Orders API, see docs.example.com e.g. for 10.20.1.5");
        assert!(found.iter().all(|h| !h.certain), "{found:?}");
        assert!(found.iter().any(|h| h.name == "docs.example.com"));
        let url = hosts_in("see https://docs.example.com/x");
        assert!(url.iter().any(|h| h.name == "docs.example.com" && h.certain), "{url:?}");
        assert!(hosts_in("a.example.com:1 b.example.com:2").iter().all(|h| h.certain));
    }

    #[test]
    fn ports_are_kept() {
        assert_eq!(hosts_in("http://a.example.com/")[0].port, Some(80));
        assert_eq!(hosts_in("redis://a.example.com:6390/0")[0].port, Some(6390));
        assert_eq!(hosts_in("a.example.com:9092")[0].port, Some(9092));
    }
}
