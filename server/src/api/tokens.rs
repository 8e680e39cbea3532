//! Bearer tokens for TCP clients: one per line in a file, compared in constant time, reloaded
//! on SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

/// The tokens in force; cheap to clone and share with the request guard.
#[derive(Clone)]
pub struct Tokens {
    path: PathBuf,
    entries: Arc<RwLock<Vec<Vec<u8>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the token file {0} holds no token (one per line; blank lines and # comments are skipped)"
    )]
    Empty(String),
}

fn load(path: &Path) -> Result<Vec<Vec<u8>>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if tokens.is_empty() {
        return Err(TokenError::Empty(path.display().to_string()));
    }
    Ok(tokens)
}

impl Tokens {
    pub fn open(path: &Path) -> Result<Tokens, TokenError> {
        Ok(Tokens {
            path: path.to_path_buf(),
            entries: Arc::new(RwLock::new(load(path)?)),
        })
    }

    /// Re-reads the file; on error the tokens in force stay.
    pub fn reload(&self) -> Result<usize, TokenError> {
        let fresh = load(&self.path)?;
        let count = fresh.len();
        *self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(count)
    }

    /// The matching token's identity for audit logs (`token#<line>` among the tokens), or
    /// `None`. Every token is compared, in constant time, whatever matches.
    pub fn check(&self, presented: &[u8]) -> Option<String> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut found = None;
        for (i, t) in entries.iter().enumerate() {
            if bool::from(t.as_slice().ct_eq(presented)) && found.is_none() {
                found = Some(format!("token#{}", i + 1));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_load_check_and_reload() {
        let dir = std::env::temp_dir().join(format!("nb-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "# ops\nalpha\n\n  beta  \n").unwrap();
        let t = Tokens::open(&path).unwrap();
        assert_eq!(t.check(b"alpha").as_deref(), Some("token#1"));
        assert_eq!(t.check(b"beta").as_deref(), Some("token#2"));
        assert_eq!(t.check(b"alph"), None);
        assert_eq!(t.check(b""), None);
        std::fs::write(&path, "gamma\n").unwrap();
        assert_eq!(t.reload().unwrap(), 1);
        assert_eq!(t.check(b"alpha"), None);
        assert!(t.check(b"gamma").is_some());
        std::fs::write(&path, "\n# none\n").unwrap();
        assert!(t.reload().is_err());
        assert!(
            t.check(b"gamma").is_some(),
            "a bad reload keeps the tokens in force"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
