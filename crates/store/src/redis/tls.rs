//! The TLS crypto of the Redis client: rustls with ring (it builds without cmake).

/// Makes ring the process's rustls provider, which redis-rs's TLS builder uses; a
/// provider installed before (by anyone) is kept.
pub(super) fn install_crypto_provider() {
    // ring's provider lacks post-quantum key exchange (its deprecation note); Redis
    // servers offer classic groups, which it has.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
}
