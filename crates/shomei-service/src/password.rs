//! Argon2id hashing of login and confirmation passwords, off the async threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::{Result, ServiceError};

pub(crate) async fn hash(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut raw = [0u8; 16];
        rand::Rng::fill(&mut rand::rng(), &mut raw[..]);
        let salt =
            SaltString::encode_b64(&raw).map_err(|e| ServiceError::Password(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Password(e.to_string()))
    })
    .await?
}

/// False for a wrong password and for a stored hash that does not parse.
pub(crate) async fn verify(stored: &str, password: &str) -> Result<bool> {
    let (stored, password) = (stored.to_owned(), password.to_owned());
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await?)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let a = super::hash("Shomei#Demo1").await.unwrap();
        let b = super::hash("Shomei#Demo1").await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(super::verify(&a, "Shomei#Demo1").await.unwrap());
        assert!(!super::verify(&a, "shomei#demo1").await.unwrap());
        assert!(!super::verify("garbage", "x").await.unwrap());
    }
}
