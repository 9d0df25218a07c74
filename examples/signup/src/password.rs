//! Passwords as `users` keeps them: PBKDF2-HMAC-SHA256 over a random salt, never the text.
//!
//! Stored as `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`, so that a later change of the
//! cost still verifies the hashes written before it.

use std::num::NonZeroU32;

use nano::NanoError;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

use crate::api::codes;
use crate::hex;

/// PBKDF2 iterations for new hashes unless [`Users::with_password_rounds`] says otherwise:
/// OWASP's recommendation for PBKDF2-HMAC-SHA256.
///
/// [`Users::with_password_rounds`]: crate::Users::with_password_rounds
pub const PASSWORD_ROUNDS: u32 = 600_000;

const SCHEME: &str = "pbkdf2-sha256";
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// The most iterations a stored hash may ask for: a damaged row must not make a check run for
/// hours.
const MAX_ITERATIONS: u32 = 10_000_000;

/// The stored form of `password`, under a fresh random salt, with `rounds` iterations. Slow on
/// purpose: run it on the blocking pool.
pub(crate) fn hash(password: &str, rounds: u32) -> Result<String, NanoError> {
    let rounds = rounds.clamp(1, MAX_ITERATIONS);
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| NanoError::internal("the system's random source failed"))?;
    let mut derived = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(rounds),
        &salt,
        password.as_bytes(),
        &mut derived,
    );
    Ok(format!(
        "{SCHEME}${rounds}${}${}",
        hex::encode(&salt),
        hex::encode(&derived)
    ))
}

/// Whether `password` is the one `stored` was made from, compared in constant time.
///
/// # Errors
///
/// `S-DATABASE` when `stored` is not a hash this module wrote.
pub(crate) fn verify(password: &str, stored: &str) -> Result<bool, NanoError> {
    let unreadable = || {
        NanoError::new(
            codes::DATABASE,
            "an account's stored password is unreadable",
        )
    };
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(rounds), Some(salt), Some(derived), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(unreadable());
    };
    let rounds: u32 = rounds
        .parse()
        .ok()
        .filter(|&n| n > 0 && n <= MAX_ITERATIONS)
        .ok_or_else(unreadable)?;
    let salt = hex::decode(salt).ok_or_else(unreadable)?;
    let derived = hex::decode(derived).ok_or_else(unreadable)?;
    if derived.len() != HASH_LEN {
        return Err(unreadable());
    }
    Ok(pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(rounds),
        &salt,
        password.as_bytes(),
        &derived,
    )
    .is_ok())
}

fn iterations(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_is_salted() {
        let stored = hash("correct horse", PASSWORD_ROUNDS).unwrap();
        assert!(stored.starts_with("pbkdf2-sha256$600000$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse", &stored).unwrap());
        assert!(!verify("correct horsE", &stored).unwrap());
        assert!(!verify("", &stored).unwrap());
        assert_ne!(
            hash("correct horse", PASSWORD_ROUNDS).unwrap(),
            stored,
            "a fresh salt each time"
        );
    }

    #[test]
    fn an_unreadable_stored_hash_is_a_database_error() {
        let good = hash("pw", 1_000).unwrap();
        let mut parts: Vec<&str> = good.split('$').collect();
        for bad in [
            String::new(),
            "plain text".to_owned(),
            good.replacen(SCHEME, "md5", 1),
            good.replacen("$1000$", "$0$", 1),
            good.replacen("$1000$", "$4000000000$", 1),
            format!("{good}$more"),
            {
                parts[3] = "zz";
                parts.join("$")
            },
        ] {
            let err = verify("pw", &bad).unwrap_err();
            assert_eq!(err.code(), codes::DATABASE, "{bad}");
        }
    }
}
