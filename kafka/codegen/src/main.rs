//! Regenerates `kafka/src/protocol/messages.rs` from `kafka/protocol/schema/`.

use std::path::PathBuf;
use std::process::ExitCode;

use kstreams_kafka_codegen::{OUTPUT, SCHEMA_DIR, generate_dir};

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let code = match generate_dir(&root.join(SCHEMA_DIR)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kstreams-kafka-codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = root.join(OUTPUT);
    if let Err(e) = std::fs::write(&out, code) {
        eprintln!("kstreams-kafka-codegen: writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {OUTPUT}");
    ExitCode::SUCCESS
}
