//! The container as the kubelet would start it: its environment resolved from the Pod
//! (`$(VAR)` expansion, downward API, Secret and ConfigMap keys) and its volume mounts
//! mapped to local directories, with every value under a mount path pointed at the local one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, KeyToPath, Pod, Secret, Volume};
use kstreams_operator::resources::properties::CONFIG_DIR;
use kube::{Api, Client};

/// Where the example app reads `streams.properties` from when it is not the default path.
const CONFIG_FILE_ENV: &str = "KAFKA_STREAMS_CONFIG_FILE";

/// Files of a volume as (path inside it, content).
type Files = Vec<(String, String)>;

/// What a container gets, in local terms.
pub(super) struct Resolved {
    /// Environment in definition order, mount paths already mapped.
    pub env: Vec<(String, String)>,
    /// Names in `env` whose value came from a Secret.
    pub secret_vars: HashSet<String>,
    /// (mountPath, local dir) of every volume mount.
    pub mounts: Vec<(String, PathBuf)>,
    /// PVCs the mounts use.
    pub claims: Vec<String>,
}

/// Resolves containers of one namespace's pods, with local volumes under `root`.
pub(super) struct Kubelet<'a> {
    /// Reads the Secrets and ConfigMaps the pods refer to.
    pub client: &'a Client,
    /// The pods' namespace.
    pub namespace: &'a str,
    /// Holds `pvc/<claim>` and `pods/<uid>/<volume>`.
    pub root: &'a Path,
}

impl Kubelet<'_> {
    /// The environment and mounts of `container` in `pod`.
    pub async fn resolve(
        &self,
        pod: &Pod,
        container: &Container,
        uid: &str,
    ) -> Result<Resolved, String> {
        let (mounts, claims) = self.map_volumes(pod, container, uid).await?;
        let (mut env, secret_vars) = self.resolve_env(pod, container).await?;
        for (_, value) in env.iter_mut() {
            if let Some(local) = local_path(value, &mounts) {
                *value = local;
            }
        }
        if let Some((_, dir)) = mounts.iter().find(|(m, _)| m == CONFIG_DIR) {
            let file = dir.join("streams.properties").display().to_string();
            set(&mut env, CONFIG_FILE_ENV, file);
        }
        Ok(Resolved {
            env,
            secret_vars,
            mounts,
            claims,
        })
    }

    /// Each mount of the container as (mountPath, local dir); also the PVCs among them.
    async fn map_volumes(
        &self,
        pod: &Pod,
        container: &Container,
        uid: &str,
    ) -> Result<(Vec<(String, PathBuf)>, Vec<String>), String> {
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut mounts = Vec::new();
        let mut claims = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            let volume = volumes
                .iter()
                .find(|v| v.name == mount.name)
                .ok_or_else(|| format!("volumeMount {} has no volume", mount.name))?;
            let dir = if let Some(pvc) = &volume.persistent_volume_claim {
                claims.push(pvc.claim_name.clone());
                self.root.join("pvc").join(&pvc.claim_name)
            } else {
                // Per pod uid, like the kubelet's pod directories: a new pod gets fresh ones.
                let dir = self.root.join("pods").join(uid).join(&volume.name);
                if volume.empty_dir.is_none() {
                    write_files(&dir, self.volume_files(pod, volume).await?)?;
                }
                dir
            };
            let dir = match &mount.sub_path {
                Some(sub) if !sub.is_empty() => dir.join(sub),
                _ => dir,
            };
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            mounts.push((mount.mount_path.clone(), dir));
        }
        Ok((mounts, claims))
    }

    /// The files of a non-PVC volume as (path, content).
    async fn volume_files(&self, pod: &Pod, volume: &Volume) -> Result<Files, String> {
        if let Some(cm) = &volume.config_map {
            let data = self.config_map_data(&cm.name).await?;
            return select(data, cm.items.as_deref(), cm.optional, &cm.name);
        }
        if let Some(secret) = &volume.secret {
            let name = secret.secret_name.clone().unwrap_or_default();
            let data = self.secret_data(&name).await?;
            return select(data, secret.items.as_deref(), secret.optional, &name);
        }
        let Some(projected) = &volume.projected else {
            return Err(format!("volume {}: unsupported source", volume.name));
        };
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let data = self.config_map_data(&cm.name).await?;
                files.extend(select(data, cm.items.as_deref(), cm.optional, &cm.name)?);
            } else if let Some(secret) = &source.secret {
                let data = self.secret_data(&secret.name).await?;
                files.extend(select(
                    data,
                    secret.items.as_deref(),
                    secret.optional,
                    &secret.name,
                )?);
            } else if let Some(downward) = &source.downward_api {
                for item in downward.items.iter().flatten() {
                    let path = item.field_ref.as_ref().map(|f| f.field_path.as_str());
                    let value = path.and_then(|p| field_value(pod, p));
                    let value =
                        value.ok_or_else(|| format!("downwardAPI {}: unsupported", item.path))?;
                    files.push((item.path.clone(), value));
                }
            } else if source.service_account_token.is_none() {
                return Err(format!("volume {}: unsupported projection", volume.name));
            }
            // A service account token is left out: the example app never calls the API.
        }
        Ok(files)
    }

    /// The container's environment as the kubelet builds it, and which names hold secrets.
    async fn resolve_env(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<(Vec<(String, String)>, HashSet<String>), String> {
        if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err("envFrom is not supported by the pod runner".into());
        }
        let mut env: Vec<(String, String)> = Vec::new();
        let mut secret_vars = HashSet::new();
        for var in container.env.iter().flatten() {
            let value = match (&var.value, &var.value_from) {
                (_, Some(_)) => match self.value_from(pod, var).await? {
                    Some(v) => v,
                    None => continue,
                },
                (Some(v), None) => {
                    let defined: HashMap<_, _> = env.iter().cloned().collect();
                    expand(v, &defined)
                }
                (None, None) => String::new(),
            };
            if var
                .value_from
                .as_ref()
                .is_some_and(|s| s.secret_key_ref.is_some())
            {
                secret_vars.insert(var.name.clone());
            }
            set(&mut env, &var.name, value);
        }
        Ok((env, secret_vars))
    }

    /// A `valueFrom` source; `None` when an optional source is missing.
    async fn value_from(&self, pod: &Pod, var: &EnvVar) -> Result<Option<String>, String> {
        let Some(source) = &var.value_from else {
            return Ok(None);
        };
        let missing = |optional: Option<bool>, what: String| {
            if optional == Some(true) {
                Ok(None)
            } else {
                Err(format!("env {}: {what} is missing", var.name))
            }
        };
        if let Some(field) = &source.field_ref {
            return field_value(pod, &field.field_path)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "env {}: unsupported fieldRef {}",
                        var.name, field.field_path
                    )
                });
        }
        if let Some(r) = &source.secret_key_ref {
            let data = self.secret_data(&r.name).await?;
            return match data.get(&r.key) {
                Some(v) => Ok(Some(v.clone())),
                None => missing(r.optional, format!("key {} of Secret {}", r.key, r.name)),
            };
        }
        if let Some(r) = &source.config_map_key_ref {
            let data = self.config_map_data(&r.name).await?;
            return match data.get(&r.key) {
                Some(v) => Ok(Some(v.clone())),
                None => missing(r.optional, format!("key {} of ConfigMap {}", r.key, r.name)),
            };
        }
        Err(format!("env {}: unsupported valueFrom", var.name))
    }

    async fn secret_data(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        let api = Api::<Secret>::namespaced(self.client.clone(), self.namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| format!("Secret {name}: {e}"))?;
        let mut data = BTreeMap::new();
        for (k, v) in secret.and_then(|s| s.data).unwrap_or_default() {
            let v =
                String::from_utf8(v.0).map_err(|_| format!("Secret {name}/{k} is not UTF-8"))?;
            data.insert(k, v);
        }
        Ok(data)
    }

    async fn config_map_data(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), self.namespace);
        let cm = api
            .get_opt(name)
            .await
            .map_err(|e| format!("ConfigMap {name}: {e}"))?;
        Ok(cm.and_then(|c| c.data).unwrap_or_default())
    }
}

/// The downward API fields a container may read through `fieldRef`.
fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let quoted = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    if let Some(key) = quoted("metadata.labels['") {
        return meta.labels.as_ref()?.get(&key).cloned();
    }
    if let Some(key) = quoted("metadata.annotations['") {
        return meta.annotations.as_ref()?.get(&key).cloned();
    }
    let status = pod.status.as_ref();
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => pod.spec.as_ref()?.node_name.clone(),
        "spec.serviceAccountName" => pod.spec.as_ref()?.service_account_name.clone(),
        "status.podIP" => status?.pod_ip.clone(),
        "status.hostIP" => status?.host_ip.clone(),
        _ => None,
    }
}

/// The keys of a ConfigMap or Secret to write, all or as `items` selects, as the kubelet does.
fn select(
    data: BTreeMap<String, String>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    source: &str,
) -> Result<Files, String> {
    let optional = optional == Some(true);
    if data.is_empty() && !optional {
        return Err(format!("{source} is missing or empty"));
    }
    let Some(items) = items else {
        return Ok(data.into_iter().collect());
    };
    let mut files = Vec::new();
    for item in items {
        match data.get(&item.key) {
            Some(v) => files.push((item.path.clone(), v.clone())),
            None if optional => {}
            None => return Err(format!("{source} has no key {}", item.key)),
        }
    }
    Ok(files)
}

/// Recreates `dir` holding exactly `files`.
fn write_files(dir: &Path, files: Files) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (path, content) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&file, content).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// `value` with its mount path prefix replaced by the mount's local dir (longest mount wins).
fn local_path(value: &str, mounts: &[(String, PathBuf)]) -> Option<String> {
    mounts
        .iter()
        .filter_map(|(mount, dir)| {
            let rest = value.strip_prefix(mount.trim_end_matches('/'))?;
            (rest.is_empty() || rest.starts_with('/')).then_some((mount.len(), dir, rest))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, dir, rest)| format!("{}{rest}", dir.display()))
}

/// Sets `name`, replacing an earlier definition in place as the kubelet's map does.
fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v = value,
        None => env.push((name.to_string(), value)),
    }
}

/// Kubernetes' expansion of `$(VAR)` in env values: a defined variable is substituted, an
/// undefined reference is kept as written, and `$$` is a literal `$`.
fn expand(input: &str, defined: &HashMap<String, String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let (mut checkpoint, mut cursor) = (0, 0);
    while cursor < bytes.len() {
        if bytes[cursor] != b'$' || cursor + 1 == bytes.len() {
            cursor += 1;
            continue;
        }
        out.push_str(&input[checkpoint..cursor]);
        match bytes[cursor + 1] {
            b'$' => {
                out.push('$');
                cursor += 2;
            }
            b'(' => match input[cursor + 2..].find(')') {
                Some(len) => {
                    let name = &input[cursor + 2..cursor + 2 + len];
                    match defined.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    cursor += len + 3;
                }
                None => {
                    out.push_str("$(");
                    cursor += 2;
                }
            },
            _ => {
                out.push('$');
                cursor += 1;
            }
        }
        checkpoint = cursor;
    }
    out.push_str(&input[checkpoint..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_the_kubelet() {
        let defined = HashMap::from([("POD_NAME".to_string(), "app-0".to_string())]);
        let cases = [
            ("$(POD_NAME)", "app-0"),
            ("id-$(POD_NAME).svc", "id-app-0.svc"),
            ("$$(POD_NAME)", "$(POD_NAME)"),
            ("$(UNDEFINED)", "$(UNDEFINED)"),
            ("a$$b$c$", "a$b$c$"),
            ("$(unclosed", "$(unclosed"),
            ("ünï$(POD_NAME)ç", "ünïapp-0ç"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &defined), want, "{input}");
        }
    }

    #[test]
    fn rewrites_only_whole_mount_path_prefixes() {
        let mounts = vec![
            ("/data".to_string(), PathBuf::from("/tmp/pvc")),
            ("/data/sub".to_string(), PathBuf::from("/tmp/other")),
        ];
        assert_eq!(local_path("/data", &mounts).as_deref(), Some("/tmp/pvc"));
        assert_eq!(
            local_path("/data/x", &mounts).as_deref(),
            Some("/tmp/pvc/x")
        );
        assert_eq!(
            local_path("/data/sub/y", &mounts).as_deref(),
            Some("/tmp/other/y")
        );
        assert_eq!(local_path("/database", &mounts), None);
    }
}
