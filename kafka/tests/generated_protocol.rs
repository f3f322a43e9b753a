//! The checked-in wire types are what the generator makes of the checked-in schemas.

use std::path::PathBuf;

use kstreams_kafka_codegen::{OUTPUT, SCHEMA_DIR, generate_dir};

#[test]
fn generated_messages_match_the_schemas() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let fresh = generate_dir(&root.join(SCHEMA_DIR)).expect("the schemas generate");
    let checked_in = std::fs::read_to_string(root.join(OUTPUT)).expect("the generated file exists");
    assert!(
        fresh == checked_in,
        "{OUTPUT} is stale: run `cargo run -p kstreams-kafka-codegen` and commit the result"
    );
}
