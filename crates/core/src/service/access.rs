//! Who a request acts for: bearer tokens and their accounts, open mode,
//! and signed download links.
//!
//! A token is `tusk_` and 64 hex digits (256 random bits). The catalog
//! keeps only its SHA-256: a plain hash suffices for a secret of that
//! strength (there is nothing to guess that a slow password hash would
//! protect), and it lets every request be matched with one indexed read.
//!
//! A server on which no token was ever created is in open mode: requests
//! without a token act for the one local owner, as admin. Once a token
//! exists (even a revoked one), every request needs a valid token.
//!
//! A signed link names a file and a time; its signature is an HMAC-SHA256
//! under a key the catalog holds for every node
//! ([`crate::Catalog::signing_key`]).

use std::sync::atomic::{AtomicBool, Ordering};

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::hash::Digest32;
use crate::model::{FileId, NewToken, Owner, Revoke, Timestamp, TokenId, TokenRecord};

use super::UploadService;

/// What every token starts with, so that it is recognisable in a leak scan.
pub const TOKEN_PREFIX: &str = "tusk_";

/// The longest owner name.
const MAX_OWNER_LEN: usize = 64;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Who a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub owner: Owner,
    /// May manage tokens and read the metrics.
    pub admin: bool,
}

/// A token just created: the only time its secret is known.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub id: TokenId,
    pub owner: Owner,
    pub secret: String,
}

/// What the access rules keep in memory.
#[derive(Default)]
pub(super) struct AccessState {
    /// Set once a token is known to exist: from then on the server is
    /// closed for good (tokens are never deleted, only revoked).
    closed: AtomicBool,
    signing_key: OnceCell<[u8; 32]>,
}

/// Checks an owner name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn parse_owner(name: &str) -> Result<Owner> {
    let ok = !name.is_empty()
        && name.len() <= MAX_OWNER_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(Owner(name.to_owned()))
    } else {
        Err(Error::InvalidOwner)
    }
}

fn secret_hash(secret: &str) -> Digest32 {
    Sha256::digest(secret.as_bytes()).into()
}

impl UploadService {
    /// Creates a token for `owner` (creating its account, or setting its
    /// quota when one is given and making it admin when asked).
    pub async fn create_token(
        &self,
        owner: &str,
        quota: Option<u64>,
        admin: bool,
    ) -> Result<IssuedToken> {
        let owner = parse_owner(owner)?;
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let token = NewToken {
            id: TokenId::random(),
            secret_hash: secret_hash(&secret),
            owner: owner.clone(),
            quota,
            admin,
            created_at: Timestamp::now(),
        };
        self.catalog.insert_token(&token).await?;
        self.access.closed.store(true, Ordering::Relaxed);
        Ok(IssuedToken {
            id: token.id,
            owner,
            secret,
        })
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(self.catalog.list_tokens().await?)
    }

    /// Revokes a token by its id, or every token of an owner by its name;
    /// how many were revoked.
    pub async fn revoke_tokens(&self, id_or_owner: &str) -> Result<u32> {
        let which = match TokenId::parse(id_or_owner) {
            Some(id) => Revoke::Token(id),
            None => Revoke::Owner(parse_owner(id_or_owner)?),
        };
        Ok(self.catalog.revoke_tokens(&which, Timestamp::now()).await?)
    }

    /// Whether requests without a token are let in (no token was ever
    /// created).
    pub async fn is_open(&self) -> Result<bool> {
        if self.access.closed.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let closed = self.catalog.has_tokens().await?;
        if closed {
            self.access.closed.store(true, Ordering::Relaxed);
        }
        Ok(!closed)
    }

    /// Who a request with this bearer token (or none) acts for.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Identity> {
        let Some(secret) = bearer else {
            return if self.is_open().await? {
                Ok(Identity {
                    owner: Owner::local(),
                    admin: true,
                })
            } else {
                Err(Error::Unauthorized("this server needs a bearer token"))
            };
        };
        match self.catalog.find_token(&secret_hash(secret)).await? {
            Some(t) if t.revoked_at.is_none() => Ok(Identity {
                owner: t.account.owner,
                admin: t.account.admin,
            }),
            Some(_) => Err(Error::Unauthorized("the token was revoked")),
            None => Err(Error::Unauthorized("the token is not valid")),
        }
    }

    /// The query of a link to `file` that works without a token until
    /// `expires` (seconds since the epoch): `expires=…&sig=…`.
    pub async fn sign_link(&self, file: &FileId, expires: u64) -> Result<String> {
        let mac = self.link_mac(file, expires).await?;
        Ok(format!(
            "expires={expires}&sig={}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }

    /// Whether `sig` signs a link to `file` that has not expired at `now`
    /// (seconds since the epoch).
    pub async fn link_holds(&self, file: &FileId, expires: u64, sig: &str, now: u64) -> bool {
        if expires < now {
            return false;
        }
        let (Ok(sig), Ok(mac)) = (hex::decode(sig), self.link_mac(file, expires).await) else {
            return false;
        };
        mac.verify_slice(&sig).is_ok()
    }

    /// The key every node signs with, read once from the catalog (which
    /// stores a fresh one the first time any node asks).
    pub(super) async fn signing_key(&self) -> Result<&[u8; 32]> {
        Ok(self
            .access
            .signing_key
            .get_or_try_init(|| async {
                self.catalog.signing_key(&rand::random::<[u8; 32]>()).await
            })
            .await?)
    }

    async fn link_mac(&self, file: &FileId, expires: u64) -> Result<HmacSha256> {
        let key = self.signing_key().await?;
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(format!("download\n{file}\n{expires}").as_bytes());
        Ok(mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_names() {
        for good in ["ann", "a.b-c_d@example.org", "local", &"x".repeat(64)] {
            assert!(parse_owner(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ann/../x", "änn", &"x".repeat(65)] {
            assert!(parse_owner(bad).is_err(), "{bad}");
        }
    }
}
