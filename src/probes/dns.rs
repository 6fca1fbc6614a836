//! `dns`: a name resolves through the system's DNS configuration, with the
//! expected record type and, optionally, the expected values.
//!
//! Bounds: an answer is one DNS message (the resolver reads at most 4 KiB
//! over UDP and 64 KiB over TCP); a message shows at most 300 characters
//! of the records.

use hickory_resolver::proto::rr::RecordType;

use super::param::Texts;
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};
use crate::config::units::format_duration;

pub static KIND: Kind = Kind {
    name: "dns",
    doc: "a name resolves, with the expected record type and values",
    target: "a host name, or dns://name",
    schemes: &["dns"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// A, AAAA, CNAME, TXT, MX or SRV (default A).
    record: Option<String>,
    /// A value or list of values that must all be among the answers, e.g. "10.0.0.5" or "10 mx.example.com".
    expect: Option<Texts>,
}

struct Dns {
    name: String,
    record: RecordType,
    expect: Vec<String>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let name = match target.strip_prefix("dns://") {
        Some(rest) => rest.split(['/', '?']).next().unwrap_or_default(),
        None => target,
    }
    .trim()
    .to_string();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(ParamError::new("target", format!("`{target}` is not a host name")));
    }
    let p: Params = spec.params()?;
    let record = match p.record.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("A") => RecordType::A,
        Some("AAAA") => RecordType::AAAA,
        Some("CNAME") => RecordType::CNAME,
        Some("TXT") => RecordType::TXT,
        Some("MX") => RecordType::MX,
        Some("SRV") => RecordType::SRV,
        Some(other) => {
            return Err(ParamError::new(
                "record",
                format!("record type `{other}` is not one of A, AAAA, CNAME, TXT, MX, SRV"),
            ));
        }
    };
    Ok(Box::new(Dns {
        name,
        record,
        expect: p.expect.unwrap_or_default().0,
    }))
}

fn norm(s: &str) -> String {
    s.trim().trim_matches('"').trim_end_matches('.').to_ascii_lowercase()
}

impl Probe for Dns {
    /// The name asked about: its answers come from the resolver, but a name
    /// of another environment is still not this environment's business.
    fn hosts(&self) -> Vec<Endpoint> {
        vec![Endpoint::new(&self.name, None)]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let resolver = match ctx.net.dns().await {
                Ok(r) => r,
                Err(e) => return Outcome::fail(Class::Dns, e),
            };
            let lookup = match tokio::time::timeout(ctx.timeout, resolver.lookup(self.name.as_str(), self.record)).await
            {
                Err(_) => {
                    return Outcome::fail(
                        Class::Timeout,
                        format!(
                            "no DNS answer for `{}` within {}",
                            self.name,
                            format_duration(ctx.timeout)
                        ),
                    );
                }
                Ok(Err(e)) if e.is_nx_domain() => {
                    return Outcome::fail(
                        Class::Dns,
                        format!(
                            "`{}` does not exist (NXDOMAIN), expected {} records",
                            self.name, self.record
                        ),
                    );
                }
                Ok(Err(e)) if e.is_no_records_found() => {
                    return Outcome::fail(Class::Dns, format!("`{}` has no {} record", self.name, self.record));
                }
                Ok(Err(e)) => {
                    return Outcome::fail(Class::Dns, format!("cannot resolve `{}`: {e}", self.name));
                }
                Ok(Ok(l)) => l,
            };
            let seen: Vec<String> = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == self.record)
                .map(|r| r.data.to_string())
                .collect();
            if seen.is_empty() {
                return Outcome::fail(Class::Dns, format!("`{}` has no {} record", self.name, self.record));
            }
            let normed: Vec<String> = seen.iter().map(|s| norm(s)).collect();
            let missing: Vec<&String> = self
                .expect
                .iter()
                .filter(|want| {
                    let w = norm(want);
                    !normed
                        .iter()
                        .any(|s| *s == w || s.rsplit(' ').next() == Some(w.as_str()))
                })
                .collect();
            if !missing.is_empty() {
                return Outcome::fail(
                    Class::Dns,
                    format!(
                        "expected {} {} to include {:?}, got {}",
                        self.name,
                        self.record,
                        missing,
                        super::bounded::cut(&format!("{seen:?}"), 300)
                    ),
                );
            }
            Outcome::pass(format!(
                "{} {} = {}",
                self.name,
                self.record,
                super::bounded::cut(&seen.join(", "), 300)
            ))
        })
    }
}
