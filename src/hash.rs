//! Stable content hashes for names and pod-template annotations.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The first `len` hex characters of the SHA-256 of `data`: short enough for names, long
/// enough that two plugin sets or volumes of one cluster do not collide.
pub fn short_hash(data: &[u8], len: usize) -> String {
    let mut h = sha256_hex(data);
    h.truncate(len);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_short() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(short_hash(b"abc", 8), "ba7816bf");
    }
}
