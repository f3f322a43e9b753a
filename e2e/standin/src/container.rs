//! The container as the kubelet would start it: its environment resolved from the Pod
//! (`$(VAR)` expansion, downward API, resource fields, Secret and ConfigMap keys, `envFrom`)
//! and its volume mounts mapped to local directories, with every value under a mount path
//! pointed at the local one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, KeyToPath, PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::{Api, Client};

use crate::error::Error;

/// Files of a volume as (path inside it, content).
type Files = Vec<(String, String)>;

/// What a container gets, in local terms.
pub struct Resolved {
    /// Environment in definition order, mount paths already mapped.
    pub env: Vec<(String, String)>,
    /// Names in `env` whose value came from a Secret.
    pub secret_vars: HashSet<String>,
    /// (mountPath, local dir) of every volume mount.
    pub mounts: Vec<(String, PathBuf)>,
    /// The container's command and args, `$(VAR)` expanded, mount paths mapped.
    pub command: Vec<String>,
    /// Its args alone (a JVM image's entrypoint takes only these).
    pub args: Vec<String>,
}

/// Resolves the containers of pods, with local volumes under `root`.
pub struct Resolver<'a> {
    /// Reads the Secrets, ConfigMaps and PVCs the pods refer to.
    pub client: &'a Client,
    /// Holds `volumes/<namespace>/<claim>-<claim uid>` and `pods/<pod uid>/<volume>`.
    pub root: &'a Path,
    /// The address the pod's process binds: what `status.podIP` means to it.
    pub address: Ipv4Addr,
}

impl Resolver<'_> {
    /// The environment, command line and mounts of `container` in `pod`, on top of the
    /// image's own environment.
    pub async fn resolve(
        &self,
        pod: &Pod,
        container: &Container,
        image_env: &BTreeMap<String, String>,
    ) -> Result<Resolved, Error> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let mounts = self.map_volumes(pod, container, namespace, uid).await?;
        let (pod_env, secret_vars) = self.resolve_env(pod, container, namespace).await?;
        let mut env: Vec<(String, String)> = image_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in pod_env {
            set(&mut env, &k, v);
        }
        for (_, value) in env.iter_mut() {
            if let Some(local) = local_path(value, &mounts) {
                *value = local;
            }
        }
        let defined: HashMap<String, String> = env.iter().cloned().collect();
        let line = |words: &Option<Vec<String>>| -> Vec<String> {
            words
                .iter()
                .flatten()
                .map(|w| expand(w, &defined))
                .map(|w| local_path(&w, &mounts).unwrap_or(w))
                .collect()
        };
        let args = line(&container.args);
        let mut command = line(&container.command);
        command.extend(args.iter().cloned());
        Ok(Resolved {
            env,
            secret_vars,
            mounts,
            command,
            args,
        })
    }

    /// Each mount of the container as (mountPath, local dir).
    async fn map_volumes(
        &self,
        pod: &Pod,
        container: &Container,
        namespace: &str,
        uid: &str,
    ) -> Result<Vec<(String, PathBuf)>, Error> {
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut mounts = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            let volume = volumes
                .iter()
                .find(|v| v.name == mount.name)
                .ok_or_else(|| {
                    Error::Missing(format!("volumeMount {} has no volume", mount.name))
                })?;
            let dir = if let Some(pvc) = &volume.persistent_volume_claim {
                self.claim_dir(namespace, &pvc.claim_name).await?
            } else {
                // Per pod uid, like the kubelet's pod directories: a new pod gets fresh ones.
                let dir = self.root.join("pods").join(uid).join(&volume.name);
                if volume.empty_dir.is_none() {
                    write_files(&dir, self.volume_files(pod, volume, namespace).await?)?;
                }
                dir
            };
            let dir = match &mount.sub_path {
                Some(sub) if !sub.is_empty() => dir.join(sub),
                _ => dir,
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Local(format!("{}: {e}", dir.display())))?;
            mounts.push((mount.mount_path.clone(), dir));
        }
        Ok(mounts)
    }

    /// The directory standing in for PVC `claim`: keyed by the claim's uid, so a volume
    /// outlives its pod and a deleted and re-created claim starts empty.
    pub async fn claim_dir(&self, namespace: &str, claim: &str) -> Result<PathBuf, Error> {
        let api = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace);
        let pvc = api
            .get_opt(claim)
            .await?
            .ok_or_else(|| Error::Missing(format!("PersistentVolumeClaim {claim} not found")))?;
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(Error::Missing(format!(
                "PersistentVolumeClaim {claim} is being deleted"
            )));
        }
        let uid = pvc.metadata.uid.unwrap_or_default();
        Ok(self
            .root
            .join("volumes")
            .join(namespace)
            .join(format!("{claim}-{uid}")))
    }

    /// The files of a non-PVC volume as (path, content).
    async fn volume_files(&self, pod: &Pod, volume: &Volume, ns: &str) -> Result<Files, Error> {
        if let Some(cm) = &volume.config_map {
            let data = self.config_map_data(ns, &cm.name).await?;
            return select(data, cm.items.as_deref(), cm.optional, &cm.name);
        }
        if let Some(secret) = &volume.secret {
            let name = secret.secret_name.clone().unwrap_or_default();
            let data = self.secret_data(ns, &name).await?;
            return select(data, secret.items.as_deref(), secret.optional, &name);
        }
        if let Some(downward) = &volume.downward_api {
            return self.downward_files(pod, downward.items.as_deref());
        }
        let Some(projected) = &volume.projected else {
            return Err(Error::Unsupported(format!(
                "volume {}: only PVC, emptyDir, configMap, secret, downwardAPI and projected",
                volume.name
            )));
        };
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let data = self.config_map_data(ns, &cm.name).await?;
                files.extend(select(data, cm.items.as_deref(), cm.optional, &cm.name)?);
            } else if let Some(secret) = &source.secret {
                let data = self.secret_data(ns, &secret.name).await?;
                files.extend(select(
                    data,
                    secret.items.as_deref(),
                    secret.optional,
                    &secret.name,
                )?);
            } else if let Some(downward) = &source.downward_api {
                files.extend(self.downward_files(pod, downward.items.as_deref())?);
            } else if source.service_account_token.is_none() {
                return Err(Error::Unsupported(format!(
                    "volume {}: projection",
                    volume.name
                )));
            }
            // A service account token is left out: a local process talks to no API with it.
        }
        Ok(files)
    }

    fn downward_files(
        &self,
        pod: &Pod,
        items: Option<&[k8s_openapi::api::core::v1::DownwardAPIVolumeFile]>,
    ) -> Result<Files, Error> {
        let mut files = Vec::new();
        for item in items.into_iter().flatten() {
            let path = item.field_ref.as_ref().map(|f| f.field_path.as_str());
            let value = path.and_then(|p| self.field_value(pod, p));
            let value = value
                .ok_or_else(|| Error::Unsupported(format!("downwardAPI item {}", item.path)))?;
            files.push((item.path.clone(), value));
        }
        Ok(files)
    }

    /// The container's environment as the kubelet builds it (`envFrom` first, then `env`,
    /// a later definition replacing an earlier one), and which names hold secrets.
    async fn resolve_env(
        &self,
        pod: &Pod,
        container: &Container,
        ns: &str,
    ) -> Result<(Vec<(String, String)>, HashSet<String>), Error> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut secret_vars = HashSet::new();
        for source in container.env_from.iter().flatten() {
            let prefix = source.prefix.clone().unwrap_or_default();
            let (data, optional, what, secret) = if let Some(r) = &source.config_map_ref {
                let data = self.config_map_data(ns, &r.name).await?;
                (data, r.optional, format!("ConfigMap {}", r.name), false)
            } else if let Some(r) = &source.secret_ref {
                let data = self.secret_data(ns, &r.name).await?;
                (data, r.optional, format!("Secret {}", r.name), true)
            } else {
                continue;
            };
            if data.is_empty() && optional != Some(true) {
                return Err(Error::Missing(format!(
                    "envFrom: {what} is missing or empty"
                )));
            }
            // The kubelet skips keys that are not valid variable names.
            for (k, v) in data.into_iter().filter(|(k, _)| is_env_name(k)) {
                let name = format!("{prefix}{k}");
                if secret {
                    secret_vars.insert(name.clone());
                }
                set(&mut env, &name, v);
            }
        }
        for var in container.env.iter().flatten() {
            let value = match (&var.value, &var.value_from) {
                (_, Some(_)) => match self.value_from(pod, container, var, ns).await? {
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
    async fn value_from(
        &self,
        pod: &Pod,
        container: &Container,
        var: &EnvVar,
        ns: &str,
    ) -> Result<Option<String>, Error> {
        let Some(source) = &var.value_from else {
            return Ok(None);
        };
        let missing = |optional: Option<bool>, what: String| {
            if optional == Some(true) {
                Ok(None)
            } else {
                Err(Error::Missing(format!(
                    "env {}: {what} is missing",
                    var.name
                )))
            }
        };
        if let Some(field) = &source.field_ref {
            return self
                .field_value(pod, &field.field_path)
                .map(Some)
                .ok_or_else(|| {
                    Error::Unsupported(format!("env {}: fieldRef {}", var.name, field.field_path))
                });
        }
        if let Some(r) = &source.resource_field_ref {
            let target = match r.container_name.as_deref() {
                Some(name) if !name.is_empty() => pod
                    .spec
                    .iter()
                    .flat_map(|s| &s.containers)
                    .find(|c| c.name == name)
                    .ok_or_else(|| Error::Missing(format!("env {}: container {name}", var.name)))?,
                _ => container,
            };
            let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
            return resource_value(target, &r.resource, divisor)
                .map(Some)
                .map_err(|e| Error::Unsupported(format!("env {}: {e}", var.name)));
        }
        if let Some(r) = &source.secret_key_ref {
            let data = self.secret_data(ns, &r.name).await?;
            return match data.get(&r.key) {
                Some(v) => Ok(Some(v.clone())),
                None => missing(r.optional, format!("key {} of Secret {}", r.key, r.name)),
            };
        }
        if let Some(r) = &source.config_map_key_ref {
            let data = self.config_map_data(ns, &r.name).await?;
            return match data.get(&r.key) {
                Some(v) => Ok(Some(v.clone())),
                None => missing(r.optional, format!("key {} of ConfigMap {}", r.key, r.name)),
            };
        }
        Err(Error::Unsupported(format!("env {}: valueFrom", var.name)))
    }

    async fn secret_data(&self, ns: &str, name: &str) -> Result<BTreeMap<String, String>, Error> {
        let api = Api::<Secret>::namespaced(self.client.clone(), ns);
        let mut data = BTreeMap::new();
        for (k, v) in api
            .get_opt(name)
            .await?
            .and_then(|s| s.data)
            .unwrap_or_default()
        {
            let v = String::from_utf8(v.0)
                .map_err(|_| Error::Unsupported(format!("Secret {name}/{k} is not UTF-8")))?;
            data.insert(k, v);
        }
        Ok(data)
    }

    async fn config_map_data(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), ns);
        Ok(api
            .get_opt(name)
            .await?
            .and_then(|c| c.data)
            .unwrap_or_default())
    }

    /// The downward API fields a container may read through `fieldRef`; the pod's IP is
    /// the local address its process binds (the Pod keeps kwok's, which the API accepts).
    fn field_value(&self, pod: &Pod, path: &str) -> Option<String> {
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
        match path {
            "metadata.name" => meta.name.clone(),
            "metadata.namespace" => meta.namespace.clone(),
            "metadata.uid" => meta.uid.clone(),
            "spec.nodeName" => pod.spec.as_ref()?.node_name.clone(),
            "spec.serviceAccountName" => pod.spec.as_ref()?.service_account_name.clone(),
            "status.podIP" | "status.podIPs" => Some(self.address.to_string()),
            "status.hostIP" | "status.hostIPs" => Some(Ipv4Addr::LOCALHOST.to_string()),
            _ => None,
        }
    }
}

/// A `resourceFieldRef` value: the container's limit (or request) in units of `divisor`,
/// rounded up as the kubelet does; an unset limit is the machine's capacity.
fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, String> {
    let resources = container.resources.as_ref();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("resource {resource}"))?;
    let map = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(format!("resource {resource}")),
    };
    let set = map.and_then(|m| m.get(name)).map(|q| q.0.clone());
    let value = match (set, name) {
        (Some(q), _) => parse_quantity(&q)?,
        (None, "cpu") if kind == "limits" => {
            std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
        }
        (None, "cpu") => 0.0,
        (None, "memory") if kind == "limits" => machine_memory().unwrap_or(0.0),
        (None, _) => 0.0,
    };
    let divisor = match divisor {
        Some(d) => parse_quantity(d)?,
        None => 1.0,
    };
    if divisor <= 0.0 {
        return Err(format!("divisor {divisor}"));
    }
    Ok(format!("{}", (value / divisor).ceil() as i64))
}

/// A Kubernetes quantity (`500m`, `2`, `1Gi`, `1e3`) as a number.
fn parse_quantity(q: &str) -> Result<f64, String> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("quantity {q:?}"))?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        _ => return Err(format!("quantity {q:?}")),
    };
    Ok(number * factor)
}

fn machine_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// A C identifier-ish name, the kubelet's rule for `envFrom` keys.
fn is_env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The keys of a ConfigMap or Secret to write, all or as `items` selects, as the kubelet does.
fn select(
    data: BTreeMap<String, String>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    source: &str,
) -> Result<Files, Error> {
    let optional = optional == Some(true);
    if data.is_empty() && !optional {
        return Err(Error::Missing(format!("{source} is missing or empty")));
    }
    let Some(items) = items else {
        return Ok(data.into_iter().collect());
    };
    let mut files = Vec::new();
    for item in items {
        match data.get(&item.key) {
            Some(v) => files.push((item.path.clone(), v.clone())),
            None if optional => {}
            None => return Err(Error::Missing(format!("{source} has no key {}", item.key))),
        }
    }
    Ok(files)
}

/// Recreates `dir` holding exactly `files`.
fn write_files(dir: &Path, files: Files) -> Result<(), Error> {
    let local = |e: std::io::Error, p: &Path| Error::Local(format!("{}: {e}", p.display()));
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| local(e, dir))?;
    for (path, content) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| local(e, parent))?;
        }
        std::fs::write(&file, content).map_err(|e| local(e, &file))?;
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
    fn resource_fields_round_up_in_divisor_units() {
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "app",
            "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}, "requests": {"cpu": "250m"}}
        }))
        .unwrap();
        let v = |r: &str, d: Option<&str>| resource_value(&container, r, d).unwrap();
        assert_eq!(v("limits.cpu", None), "2");
        assert_eq!(v("limits.cpu", Some("1m")), "1500");
        assert_eq!(v("requests.cpu", Some("1m")), "250");
        assert_eq!(v("limits.memory", Some("1Mi")), "1024");
        assert_eq!(v("limits.memory", None), "1073741824");
        assert!(resource_value(&container, "limits.cpu", Some("0")).is_err());
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
