//! New database passwords. The only randomness in a reconcile; the plan decides whether the
//! fresh password is used.

use rand::distr::{Alphanumeric, SampleString};

const PASSWORD_LENGTH: usize = 32;

/// 32 alphanumerics (about 190 bits) from the thread-local CSPRNG (ChaCha12, seeded and reseeded
/// from the operating system). Alphanumeric, so it needs no escaping in a URL or a shell.
pub fn generate() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_long_random_and_url_safe() {
        let a = super::generate();
        let b = super::generate();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
