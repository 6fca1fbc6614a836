//! NATS's decentralised authentication: a user nkey (`nkey_file`, a seed
//! `SU...`) or a JWT `.creds` file (`creds_file`: the user's JWT and seed).
//! The server sends a nonce in its INFO; the client signs it with the seed
//! (ed25519, through the `nkeys` crate, NATS's own key library) and sends the
//! public key or JWT and the signature in CONNECT. The seed never leaves this
//! module and never appears in a message.

use serde_json::{Value as Json, json};

use super::{Class, Outcome, ParamError};

/// How the probe proves who it is beyond the URL's user/password or token.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A seed: its path, or the seed itself (`${secret:file:...}`).
    Nkey(String),
    /// A `.creds` file: its path, or its text.
    Creds(String),
}

/// A `.creds` file or an nkey seed is a few hundred bytes.
const MAX_FILE: u64 = 64 << 10;

impl Identity {
    /// At most one of `nkey_file` and `creds_file`. No I/O.
    pub fn from_params(nkey: Option<String>, creds: Option<String>) -> Result<Option<Identity>, ParamError> {
        match (nkey, creds) {
            (Some(_), Some(_)) => Err(ParamError::new(
                "nkey_file",
                "set `nkey_file` or `creds_file`, not both (a .creds file holds its own seed)",
            )),
            (Some(n), None) => Ok(Some(Identity::Nkey(n))),
            (None, Some(c)) => Ok(Some(Identity::Creds(c))),
            (None, None) => Ok(None),
        }
    }

    /// Add the identity to a CONNECT object, signing `nonce` (run-time I/O:
    /// reads the file). A server that sent no nonce does not use nkeys: the
    /// public key or JWT is still sent, and the server decides.
    pub fn sign_into(&self, connect: &mut Json, nonce: Option<&str>) -> Result<(), Outcome> {
        let (jwt, seed) = match self {
            Identity::Nkey(v) => (None, seed_text(v)?),
            Identity::Creds(v) => {
                let text = read("creds_file", v)?;
                let (jwt, seed) = parse_creds(&text).ok_or_else(|| {
                    Outcome::fail(
                        Class::Auth,
                        format!(
                            "creds_file {} is not a NATS .creds file (a USER JWT block and a USER NKEY SEED block)",
                            shown(v)
                        ),
                    )
                })?;
                (Some(jwt), seed)
            }
        };
        let param = match self {
            Identity::Nkey(_) => "nkey_file",
            Identity::Creds(_) => "creds_file",
        };
        let key = nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| {
            Outcome::fail(
                Class::Auth,
                format!("{param} holds no usable nkey seed ({e}): a user seed starts with SU"),
            )
        })?;
        match jwt {
            Some(jwt) => connect["jwt"] = json!(jwt),
            None => connect["nkey"] = json!(key.public_key()),
        }
        if let Some(nonce) = nonce {
            let sig = key
                .sign(nonce.as_bytes())
                .map_err(|e| Outcome::fail(Class::Auth, format!("cannot sign the server's nonce: {e}")))?;
            connect["sig"] = json!(data_encoding::BASE64URL_NOPAD.encode(&sig));
        }
        Ok(())
    }
}

/// The seed itself (`SU...`), or the content of the file that holds it.
fn seed_text(value: &str) -> Result<String, Outcome> {
    let v = value.trim();
    if v.starts_with('S') && !v.contains(['/', '.']) && !v.contains(char::is_whitespace) {
        return Ok(v.to_string());
    }
    let text = read("nkey_file", value)?;
    // A seed file may hold the public key on another line (as `nk` writes
    // it); the seed is the line starting with S.
    Ok(text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('S'))
        .unwrap_or_default()
        .to_string())
}

/// The JWT and the seed of a `.creds` file: the first line after a
/// `---...BEGIN ... JWT...---` line and after a `---...SEED...---` line.
fn parse_creds(text: &str) -> Option<(String, String)> {
    let mut jwt = None;
    let mut seed = None;
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        let fence = l.starts_with("---") && l.ends_with("---");
        if fence && l.contains("BEGIN") {
            let value = lines.by_ref().find(|l| !l.is_empty())?.to_string();
            if l.contains("JWT") {
                jwt.get_or_insert(value);
            } else if l.contains("SEED") {
                seed.get_or_insert(value);
            }
        }
    }
    Some((jwt?, seed?))
}

/// Text given inline (a `.creds` text from `${secret:file:...}`), or a
/// file's content, bounded.
fn read(param: &str, value: &str) -> Result<String, Outcome> {
    if value.trim_start().starts_with("---") {
        return Ok(value.to_string());
    }
    let fail = |e: std::io::Error| {
        Outcome::fail(
            Class::Io,
            format!(
                "cannot read {param} {value}: {}",
                crate::diagnostic::plain(&e.to_string())
            ),
        )
    };
    let f = std::fs::File::open(value).map_err(fail)?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_FILE), &mut out).map_err(fail)?;
    Ok(out)
}

/// A path as itself; inline text (a secret) as a description.
fn shown(value: &str) -> &str {
    if value.trim_start().starts_with("---") {
        "(inline text)"
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creds_file_gives_its_jwt_and_seed() {
        let text = "-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n\
                    ************************* IMPORTANT *************************\n\
                    NKEY Seed printed below can be used to sign and prove identity.\n\n\
                    -----BEGIN USER NKEY SEED-----\nSUAEXAMPLE\n------END USER NKEY SEED------\n";
        assert_eq!(
            parse_creds(text),
            Some(("eyJhbGciOi.x.y".to_string(), "SUAEXAMPLE".to_string()))
        );
        assert_eq!(parse_creds("-----BEGIN NATS USER JWT-----\nabc\n"), None);
    }

    #[test]
    fn the_nonce_is_signed_with_the_seed_and_verifies_with_the_public_key() {
        let user = nkeys::KeyPair::new_user();
        let id = Identity::Nkey(user.seed().unwrap());
        let mut connect = json!({});
        id.sign_into(&mut connect, Some("n0nce")).unwrap();
        assert_eq!(connect["nkey"], json!(user.public_key()));
        let sig = data_encoding::BASE64URL_NOPAD
            .decode(connect["sig"].as_str().unwrap().as_bytes())
            .unwrap();
        user.verify(b"n0nce", &sig).unwrap();
    }

    #[test]
    fn a_bad_seed_is_an_auth_failure_that_does_not_show_it() {
        let id = Identity::Nkey("SUNOTASEED".into());
        let o = id.sign_into(&mut json!({}), Some("n")).unwrap_err();
        assert_eq!(o.class, Some(Class::Auth));
        assert!(!o.message.contains("SUNOTASEED"), "{}", o.message);
    }
}
