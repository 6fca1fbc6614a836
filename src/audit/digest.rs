//! Keyed digests of configuration values, so an incident can say which keys
//! changed since its check last passed without the store ever holding a
//! value: HMAC-SHA-256 under a random key that lives in the store (a digest
//! of a short secret could otherwise be guessed offline).

use std::collections::BTreeMap;

use ring::hmac;

use crate::config::assemble::Assembled;
use crate::config::merge::key_string;

/// A configuration as the store keeps it: each dotted key and its value's
/// keyed digest (hex), sorted by key.
pub type Snapshot = BTreeMap<String, String>;

/// Each dotted key of a configuration and its value as text, not yet
/// digested: held in memory only, for [`Digester::digest`].
pub type Leaves = Vec<(String, String)>;

/// The leaves of an assembled configuration.
pub fn leaves(a: &Assembled) -> Leaves {
    a.root
        .leaves()
        .into_iter()
        .map(|(path, leaf)| (key_string(&path), leaf.value.to_string()))
        .collect()
}

pub struct Digester {
    key: hmac::Key,
}

impl Digester {
    pub fn new(secret: &[u8]) -> Digester {
        Digester {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A fresh random key for a new store, hex.
    pub fn random_key() -> Result<String, String> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "the system's random number generator failed".to_string())?;
        Ok(hex(&bytes))
    }

    fn tag(&self, parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        hex(&ctx.sign().as_ref()[..12])
    }

    /// A configuration's [`leaves`], digested. The leaves are taken while
    /// the run holds the configuration, before the store (and so the key)
    /// is open.
    pub fn digest(&self, leaves: Leaves) -> Snapshot {
        leaves
            .into_iter()
            .map(|(key, value)| {
                let d = self.tag(&[key.as_bytes(), value.as_bytes()]);
                (key, d)
            })
            .collect()
    }

    /// One digest naming a whole snapshot (the run's configuration digest).
    pub fn id(&self, s: &Snapshot) -> String {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(s.len() * 2);
        for (k, v) in s {
            parts.push(k.as_bytes());
            parts.push(v.as_bytes());
        }
        self.tag(&parts)
    }
}

/// Keys whose value differs between two snapshots (added and removed too),
/// sorted.
pub fn changed(before: &Snapshot, now: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(before.keys().filter(|k| !now.contains_key(*k)).cloned());
    out.sort();
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_depend_on_the_key_and_never_show_the_value() {
        let a = Digester::new(b"one");
        let b = Digester::new(b"two");
        let va = a.tag(&[b"database.url", b"\"postgres://app:hunter2@db/x\""]);
        assert_ne!(va, b.tag(&[b"database.url", b"\"postgres://app:hunter2@db/x\""]));
        assert_eq!(va.len(), 24);
        assert!(!va.contains("hunter2"));
    }

    #[test]
    fn changed_lists_changed_added_and_removed_keys() {
        let before: Snapshot = [("a", "1"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let now: Snapshot = [("a", "1"), ("b", "9"), ("d", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(changed(&before, &now), ["b", "c", "d"]);
    }
}
