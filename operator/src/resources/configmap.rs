//! The ConfigMap holding `streams.properties`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest, Sha256};

use super::properties::{properties_file, shared_properties};
use super::{child_meta, configmap_name};
use crate::crd::StreamApp;

/// File name of the shared settings inside the ConfigMap and the mounted directory.
pub const PROPERTIES_KEY: &str = "streams.properties";

/// The app's ConfigMap.
pub fn configmap(app: &StreamApp) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(app, configmap_name(app)),
        data: Some(BTreeMap::from([(
            PROPERTIES_KEY.to_string(),
            properties_file(&shared_properties(app)),
        )])),
        ..ConfigMap::default()
    }
}

/// A digest of the ConfigMap's content; on the pod template it makes a config change roll
/// the pods.
pub fn config_hash(cm: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in cm.data.iter().flatten() {
        hasher.update(k.as_bytes());
        hasher.update([0]);
        hasher.update(v.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
