//! Argon2id password hashing, off the async runtime and bounded.
//!
//! Parameters follow OWASP's Password Storage Cheat Sheet (m = 19 MiB, t = 2, p = 1). A hash costs
//! tens of milliseconds of CPU, so it runs on the blocking pool behind a semaphore sized to the
//! CPU count (`PASSWORD_HASH_CONCURRENCY`): a login storm queues behind the semaphore instead of
//! starving every other request of runtime threads. Rate limits run *before* hashing.
use std::{sync::Arc, time::Duration};

use argon2::{
    password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::AppError;

/// How long a request waits for a hashing slot before giving up with 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verifying against it when the account does not exist
    /// takes as long as a real verification, so timing does not reveal which emails exist.
    dummy: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's accepted ranges.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon2()
            .hash_password(crate::crypto::new_token().as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Unavailable("the server is busy; retry shortly"))?
            .map_err(|e| AppError::Internal(e.into()))?;
        let out = tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        Ok(out)
    }

    /// Argon2id PHC string of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String, AppError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
        .map_err(AppError::Internal)
    }

    /// Whether `password` matches `stored` (an unknown account passes `None` and always fails,
    /// after the same amount of work).
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, AppError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.to_string());
        let ok = self
            .run(move || match PasswordHash::new(&phc) {
                Ok(hash) => argon2()
                    .verify_password(password.expose_secret().as_bytes(), &hash)
                    .is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let hasher = PasswordHasher::new(2).expect("hasher");
        let phc = hasher
            .hash(SecretString::from("correct horse"))
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher
            .verify(SecretString::from("correct horse"), Some(phc.clone()))
            .await
            .expect("verify"));
        assert!(!hasher
            .verify(SecretString::from("wrong horse"), Some(phc))
            .await
            .expect("verify"));
        assert!(!hasher
            .verify(SecretString::from("anything"), None)
            .await
            .expect("verify"));
    }
}
