//! The built `kstreams-operator` binary, for tests that run the operator as a real process.

use std::path::PathBuf;

/// Path of the `kstreams-operator` binary of this workspace (built by `make test` before the
/// integration tests; `cargo build -p kstreams-operator` builds it by hand).
pub fn operator_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/kstreams-operator");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p kstreams-operator` (make test does)",
        path.display()
    );
    path
}
