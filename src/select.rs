//! Which checks a run selects: `--only` / `--skip` (names or globs), `--tag`,
//! and `--shard K/N`. Pure: decided from names and tags alone, before anything
//! is built or connected. Probes and rules both use it.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::diagnostic::{Problem, Problems};

/// `--only`, `--skip` and `--tag`; every list may also be comma-separated.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    only: Option<GlobSet>,
    skip: Option<GlobSet>,
    tags: Vec<String>,
}

impl Selection {
    pub fn new(only: &[String], skip: &[String], tags: &[String]) -> Result<Selection, Problems> {
        Ok(Selection {
            only: globs("--only", only)?,
            skip: globs("--skip", skip)?,
            tags: split(tags),
        })
    }

    /// Everything is selected.
    pub fn is_all(&self) -> bool {
        self.only.is_none() && self.skip.is_none() && self.tags.is_empty()
    }

    /// A check is selected when `--only` (if any) matches its name, `--skip`
    /// does not, and it carries one of the `--tag`s (if any).
    pub fn matches(&self, name: &str, tags: &[String]) -> bool {
        self.only.as_ref().is_none_or(|g| g.is_match(name))
            && !self.skip.as_ref().is_some_and(|g| g.is_match(name))
            && (self.tags.is_empty() || tags.iter().any(|t| self.tags.contains(t)))
    }
}

fn split(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn globs(flag: &str, values: &[String]) -> Result<Option<GlobSet>, Problems> {
    let values = split(values);
    if values.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for v in &values {
        let g = Glob::new(v).map_err(|e| {
            Problems::from(
                Problem::new("envgate::cli::select", format!("{flag} {v:?}: {}", e.kind()))
                    .help("give a name or a glob such as `db-*`"),
            )
        })?;
        b.add(g);
    }
    let set = b
        .build()
        .map_err(|e| Problems::from(Problem::new("envgate::cli::select", format!("{flag}: {e}"))))?;
    Ok(Some(set))
}

/// `--shard K/N`: this runner takes the checks whose stable hash lands in
/// shard K (1-based) of N. The same name always lands in the same shard, on
/// every machine and every version, so N runners split the work exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected K/N such as 1/4, got {s:?}"))?;
        let k: u32 = k.trim().parse().map_err(|_| format!("shard {k:?} is not a number"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {k}/{n}: K must be between 1 and N"));
        }
        Ok(Shard { index: k, count: n })
    }

    pub fn contains(&self, name: &str) -> bool {
        stable_hash(name) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shard::parse(s)
    }
}

/// FNV-1a, 64-bit: fixed forever, unlike `std`'s `DefaultHasher`.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(only: &[&str], skip: &[&str], tags: &[&str]) -> Selection {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection::new(&v(only), &v(skip), &v(tags)).unwrap()
    }

    #[test]
    fn only_skip_and_tags_combine() {
        let t = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(sel(&[], &[], &[]).matches("x", &[]));
        assert!(sel(&["db-*"], &[], &[]).matches("db-main", &[]));
        assert!(!sel(&["db-*"], &[], &[]).matches("cache", &[]));
        assert!(!sel(&[], &["db-*,cache"], &[]).matches("cache", &[]));
        assert!(sel(&[], &[], &["db"]).matches("x", &t(&["db", "slow"])));
        assert!(!sel(&[], &[], &["db"]).matches("x", &t(&["web"])));
    }

    #[test]
    fn shard_spec_is_checked() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("0/4").is_err());
        assert!(Shard::parse("5/4").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn shards_stay_where_they_were_across_versions() {
        // FNV-1a's published test vectors, and one probe name: a change here
        // moves probes between the shards of every CI matrix out there.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(stable_hash("orders-db"), 0x9506_97f6_45c6_df95);
    }
}
