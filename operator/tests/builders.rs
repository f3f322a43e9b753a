//! Golden tests of the pure builders: a StreamApp in `golden/<case>.input.yaml` must build
//! exactly the objects in `golden/<case>.golden.yaml`. `UPDATE_GOLDEN=1` rewrites the goldens
//! (review the diff before committing it).

use std::path::{Path, PathBuf};

use kstreams_operator::crd::StreamApp;
use kstreams_operator::resources::render;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check(case: &str) {
    let input = std::fs::read_to_string(golden_dir().join(format!("{case}.input.yaml"))).unwrap();
    let mut app: StreamApp = serde_yaml::from_str(&input).unwrap();
    app.metadata.uid = Some("8a5f3c1e-0000-4000-8000-000000000001".into());
    let got = render(&serde_yaml::to_string(&app).unwrap()).unwrap();
    let path = golden_dir().join(format!("{case}.golden.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        got == want,
        "{case}: built objects differ from {}; run with UPDATE_GOLDEN=1 and review the diff\n{got}",
        path.display()
    );
}

#[test]
fn minimal_app_gets_the_safe_defaults() {
    check("minimal");
}

#[test]
fn word_count_app_with_required_anti_affinity() {
    check("wordcount");
}

#[test]
fn full_app_with_tls_sasl_iq_and_overrides() {
    check("full");
}

#[test]
fn streams_protocol_app_gets_group_protocol_streams() {
    check("streams");
}

#[test]
fn crd_in_repo_is_generated_from_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/streamapp.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == kstreams_operator::crd::crd_yaml().unwrap(),
        "{} is stale: run `make crd` and commit the result",
        path.display()
    );
}
