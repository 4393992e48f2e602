//! `-redis_ca_cert` (also `REDIS_CA`, the file `redis_ca`): upstream takes the Redis
//! server's CA certificate as base64-encoded PEM; plain PEM is accepted too.

use anyhow::{bail, Result};
use base64::Engine as _;

/// The PEM bytes, or `None` when no certificate is configured.
pub fn decode(text: &str) -> Result<Option<Vec<u8>>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let pem = if text.starts_with("-----BEGIN") {
        text.as_bytes().to_vec()
    } else {
        // Base64 as a secret or a shell may wrap it: whitespace is ignored.
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        match base64::engine::general_purpose::STANDARD.decode(compact) {
            Ok(pem) => pem,
            Err(e) => bail!("-redis_ca_cert is neither PEM nor base64-encoded PEM: {e}"),
        }
    };
    if !pem.starts_with(b"-----BEGIN") {
        bail!("-redis_ca_cert does not hold a PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    Ok(Some(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_or_plain_pem() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(decode(&encoded).unwrap().unwrap(), pem.as_bytes());
        let wrapped = format!("{}\n{}\n", &encoded[..20], &encoded[20..]);
        assert_eq!(decode(&wrapped).unwrap().unwrap(), pem.as_bytes());
        assert_eq!(decode(pem).unwrap().unwrap(), pem.trim().as_bytes());
        assert_eq!(decode("  ").unwrap(), None);
        assert!(decode("%%%").is_err());
        assert!(decode(&base64::engine::general_purpose::STANDARD.encode("hello")).is_err());
    }
}
