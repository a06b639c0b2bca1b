//! Annotator accounts (name + token, only a salted hash of the token stored), the server's
//! secret key, signed session cookies, CSRF tokens and the per-annotator left/right order.
//!
//! Tokens are 192-bit random strings made by [`add_annotator`], so a single salted SHA-256 is
//! enough to make the stored hashes useless to someone who reads `annotators.json` (there is
//! nothing to brute-force; a slow password hash only matters for human-chosen secrets).
//! Sessions are stateless: the cookie is `name~issued_ms~HMAC(key, name, issued_ms,
//! token_hash)`, so sessions survive a server restart and die when the token is rotated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::util::{hex, now_ms, random_bytes, unhex};
use rlhf_util::write_atomic_mode;

/// File of the annotator accounts inside the session directory.
pub const ANNOTATORS_FILE: &str = "annotators.json";
/// File of the server's HMAC key inside the session directory (mode 0600).
pub const KEY_FILE: &str = "server.key";
/// Longest accepted annotator name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// One stored account: the token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotatorRecord {
    /// Login name (`[A-Za-z0-9_.-]`, 1 to 64 bytes).
    pub name: String,
    /// Random salt, hex.
    pub salt: String,
    /// `SHA-256(salt bytes ‖ token bytes)`, hex.
    pub token_sha256: String,
    /// When the token was issued (ms since the Unix epoch).
    pub created_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AnnotatorsFile {
    version: u32,
    annotators: Vec<AnnotatorRecord>,
}

/// `true` for names of 1 to [`MAX_NAME_LEN`] bytes made of ASCII letters, digits, `_`, `.`, `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn token_hash(salt: &[u8], token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(token.as_bytes());
    h.finalize().into()
}

/// Equality of two byte strings in time independent of where they differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Creates an account `name` in `dir/annotators.json` (or gives an existing one a new token
/// when `rotate` is set) and returns the new token. The token is shown once: only its salted
/// hash is written. The file is replaced atomically.
///
/// # Errors
/// [`Error::Annotator`] for an invalid name, an existing name without `rotate`, or an unknown
/// name with `rotate`; I/O errors.
pub fn add_annotator(dir: &Path, name: &str, rotate: bool) -> Result<String> {
    if !valid_name(name) {
        return Err(Error::Annotator {
            name: name.into(),
            message: format!("names are 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -"),
        });
    }
    let path = dir.join(ANNOTATORS_FILE);
    let mut file = read_annotators_file(&path)?;
    let token = hex(&random_bytes(24));
    let salt = random_bytes(16);
    let record = AnnotatorRecord {
        name: name.into(),
        salt: hex(&salt),
        token_sha256: hex(&token_hash(&salt, &token)),
        created_ms: now_ms(),
    };
    match (file.annotators.iter_mut().find(|a| a.name == name), rotate) {
        (Some(existing), true) => *existing = record,
        (Some(_), false) => {
            return Err(Error::Annotator {
                name: name.into(),
                message: "already exists (use rotate to issue a new token)".into(),
            });
        }
        (None, true) => {
            return Err(Error::Annotator {
                name: name.into(),
                message: "unknown, cannot rotate its token".into(),
            });
        }
        (None, false) => file.annotators.push(record),
    }
    file.version = 1;
    write_atomic_mode(&path, &serde_json::to_vec_pretty(&file)?, 0o600)?;
    Ok(token)
}

fn read_annotators_file(path: &Path) -> Result<AnnotatorsFile> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let f: AnnotatorsFile = serde_json::from_slice(&bytes).map_err(|e| {
                Error::bad_file(
                    path,
                    format!(
                        "{e}; expected {{\"version\": 1, \"annotators\": [{{\"name\", \"salt\", \"token_sha256\", \"created_ms\"}}]}}"
                    ),
                )
            })?;
            for a in &f.annotators {
                if !valid_name(&a.name)
                    || unhex(&a.salt).is_none()
                    || unhex(&a.token_sha256).map(|h| h.len()) != Some(32)
                {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "annotator {:?}: expected a valid name, a hex salt and a 64-hex-digit token_sha256",
                            a.name
                        ),
                    ));
                }
            }
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AnnotatorsFile::default()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The accounts of a session directory, reloaded when `annotators.json` changes on disk (so
/// annotators added or rotated while the server runs take effect without a restart).
#[derive(Debug)]
pub struct Annotators {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    by_name: HashMap<String, AnnotatorRecord>,
}

impl Annotators {
    /// Loads `dir/annotators.json` (an absent file means no accounts).
    ///
    /// # Errors
    /// [`Error::BadFile`] for a malformed file; I/O errors.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut a = Annotators {
            path: dir.join(ANNOTATORS_FILE),
            stamp: None,
            by_name: HashMap::new(),
        };
        a.reload()?;
        Ok(a)
    }

    fn current_stamp(&self) -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    fn reload(&mut self) -> Result<()> {
        self.stamp = self.current_stamp();
        let f = read_annotators_file(&self.path)?;
        self.by_name = f
            .annotators
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        Ok(())
    }

    /// Reloads the file if its modification time or size changed; keeps the old accounts
    /// (and logs a warning) if the new file is malformed.
    pub fn refresh(&mut self) {
        if self.current_stamp() != self.stamp
            && let Err(e) = self.reload()
        {
            tracing::warn!("keeping the previous annotator list: {e}");
        }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// `true` when there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The account `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<&AnnotatorRecord> {
        self.by_name.get(name)
    }

    /// `true` when `token` is the current token of `name` (constant-time on the hashes).
    pub fn verify(&self, name: &str, token: &str) -> bool {
        let Some(rec) = self.by_name.get(name) else {
            return false;
        };
        let (Some(salt), Some(want)) = (unhex(&rec.salt), unhex(&rec.token_sha256)) else {
            return false;
        };
        ct_eq(&token_hash(&salt, token), &want)
    }
}

/// The server's secret key: signs session cookies, derives CSRF tokens and the per-annotator
/// side order. Kept in `dir/server.key` (created with mode 0600 on first start).
#[derive(Clone)]
pub struct Keys {
    key: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Loads `dir/server.key`, creating it with 32 random bytes if absent.
    ///
    /// # Errors
    /// [`Error::BadFile`] if the file is not 64 hex digits; I/O errors.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                let key = unhex(s.trim())
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| Error::bad_file(&path, "expected 64 hex digits"))?;
                Ok(Keys { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_bytes(32);
                write_atomic_mode(&path, format!("{}\n", hex(&key)).as_bytes(), 0o600)?;
                Ok(Keys { key })
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(key: &[u8]) -> Self {
        Keys { key: key.to_vec() }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            m.update(&(p.len() as u64).to_le_bytes());
            m.update(p);
        }
        m
    }

    /// A session cookie value for `rec`, issued at `issued_ms`.
    pub fn session(&self, rec: &AnnotatorRecord, issued_ms: u64) -> String {
        let tag = self
            .mac(&[
                b"session",
                rec.name.as_bytes(),
                issued_ms.to_string().as_bytes(),
                rec.token_sha256.as_bytes(),
            ])
            .finalize()
            .into_bytes();
        format!("{}~{issued_ms}~{}", rec.name, hex(&tag))
    }

    /// The annotator a session cookie belongs to, if its signature is valid for the current
    /// token of that annotator and it is younger than `ttl_ms`.
    pub fn check_session(
        &self,
        cookie: &str,
        annotators: &Annotators,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Option<String> {
        let mut it = cookie.split('~');
        let (name, issued, tag) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !valid_name(name) {
            return None;
        }
        let issued_ms: u64 = issued.parse().ok()?;
        if issued_ms > now_ms.saturating_add(60_000) || now_ms.saturating_sub(issued_ms) > ttl_ms {
            return None;
        }
        let rec = annotators.get(name)?;
        let tag = unhex(tag)?;
        self.mac(&[
            b"session",
            name.as_bytes(),
            issued.as_bytes(),
            rec.token_sha256.as_bytes(),
        ])
        .verify_slice(&tag)
        .ok()?;
        Some(name.to_owned())
    }

    /// The CSRF token bound to a session cookie (sent back in the `X-CSRF-Token` header).
    pub fn csrf(&self, cookie: &str) -> String {
        hex(&self
            .mac(&[b"csrf", cookie.as_bytes()])
            .finalize()
            .into_bytes())
    }

    /// `true` when `token` is the CSRF token of `cookie` (constant time).
    pub fn check_csrf(&self, cookie: &str, token: &str) -> bool {
        match unhex(token) {
            Some(t) => self
                .mac(&[b"csrf", cookie.as_bytes()])
                .verify_slice(&t)
                .is_ok(),
            None => false,
        }
    }

    /// Whether `annotator` sees `response_b` on the left for `pair_id`: a keyed pseudo-random
    /// bit, stable across reloads and restarts, unpredictable without the key, and independent
    /// between annotators.
    pub fn left_is_b(&self, annotator: &str, pair_id: &str) -> bool {
        let tag = self
            .mac(&[b"side", annotator.as_bytes(), pair_id.as_bytes()])
            .finalize()
            .into_bytes();
        tag[0] & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hashed_at_rest_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let t = add_annotator(dir.path(), "alice", false).unwrap();
        assert_eq!(t.len(), 48);
        let text = std::fs::read_to_string(dir.path().join(ANNOTATORS_FILE)).unwrap();
        assert!(!text.contains(&t), "the token must not be stored");
        let a = Annotators::load(dir.path()).unwrap();
        assert!(a.verify("alice", &t));
        assert!(!a.verify("alice", "wrong"));
        assert!(!a.verify("bob", &t));
        assert!(add_annotator(dir.path(), "alice", false).is_err());
        assert!(add_annotator(dir.path(), "bad name", false).is_err());
        assert!(add_annotator(dir.path(), "carol", true).is_err());
        let t2 = add_annotator(dir.path(), "alice", true).unwrap();
        let a = Annotators::load(dir.path()).unwrap();
        assert!(a.verify("alice", &t2) && !a.verify("alice", &t));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(ANNOTATORS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "annotators.json must not be group/world readable"
            );
        }
    }

    #[test]
    fn sessions_are_signed_expire_and_die_with_the_token() {
        let dir = tempfile::tempdir().unwrap();
        add_annotator(dir.path(), "alice", false).unwrap();
        let a = Annotators::load(dir.path()).unwrap();
        let k = Keys::load_or_create(dir.path()).unwrap();
        let rec = a.get("alice").unwrap().clone();
        let c = k.session(&rec, 1_000);
        assert_eq!(
            k.check_session(&c, &a, 2_000, 10_000).as_deref(),
            Some("alice")
        );
        assert_eq!(k.check_session(&c, &a, 20_000, 10_000), None, "expired");
        let forged = c.replace("alice", "bob");
        assert_eq!(k.check_session(&forged, &a, 2_000, 10_000), None);
        let other = Keys::from_bytes(&[7; 32]);
        assert_eq!(other.check_session(&c, &a, 2_000, 10_000), None);
        // Same key from disk.
        let k2 = Keys::load_or_create(dir.path()).unwrap();
        assert!(k2.check_session(&c, &a, 2_000, 10_000).is_some());
        // Rotating the token invalidates the session.
        add_annotator(dir.path(), "alice", true).unwrap();
        let a2 = Annotators::load(dir.path()).unwrap();
        assert_eq!(k.check_session(&c, &a2, 2_000, 10_000), None);
        // CSRF tokens are bound to the cookie.
        let csrf = k.csrf(&c);
        assert!(k.check_csrf(&c, &csrf));
        assert!(!k.check_csrf(&forged, &csrf));
        assert!(!k.check_csrf(&c, "00"));
    }

    #[test]
    fn side_order_is_stable_and_roughly_balanced() {
        let k = Keys::from_bytes(&[1; 32]);
        assert_eq!(k.left_is_b("a", "p1"), k.left_is_b("a", "p1"));
        let n = (0..1000)
            .filter(|i| k.left_is_b("a", &format!("p{i}")))
            .count();
        assert!((400..600).contains(&n), "{n}");
    }
}
