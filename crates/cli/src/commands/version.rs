//! `kar version`.

/// Prints the version of this build.
pub fn print() {
    println!("{}", env!("CARGO_PKG_VERSION"));
}
