//! API tokens: created with a secret shown once, kept as its hash.

use sha2::{Digest, Sha256};

use crate::audit::hex;
use crate::error::{Error, Result};
use crate::model::{Scope, StreamPattern, Token};
use crate::{Store, Time};

impl Store {
    /// Creates a token and returns its secret, which is shown once: the
    /// store keeps only its hash.
    pub fn create_token(&self, name: &str, scope: Scope, streams: StreamPattern) -> Result<String> {
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "token name {name:?}: give 1 to 200 printable characters"
            )));
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(Error::NoRandomness)?;
        let secret = format!("fw_{}", hex(&random));
        let token = Token {
            name: name.to_owned(),
            scope,
            streams,
            created: Time::now().as_micros(),
        };
        self.write(|db| {
            if db.tokens()?.iter().any(|t| t.name == name) {
                return Err(Error::Invalid(format!(
                    "a token named {name:?} exists already"
                )));
            }
            db.insert_token(&token, &Sha256::digest(secret.as_bytes()))
        })?;
        Ok(secret)
    }

    /// The token with this secret, if any.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Token>> {
        let hash = Sha256::digest(secret.as_bytes());
        self.read(|db| db.token_by_hash(&hash))
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<Token>> {
        self.read(|db| db.tokens())
    }

    /// Deletes a token; `false` if there was none of that name.
    pub fn revoke_token(&self, name: &str) -> Result<bool> {
        self.write(|db| db.delete_token(name))
    }
}
