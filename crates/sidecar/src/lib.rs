//! The kar sidecar (HTTP server and app client).
