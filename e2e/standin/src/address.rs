//! Pod addresses: the API refuses loopback addresses in Endpoints, so a Pod keeps kwok's fake
//! IP in its status while its process binds an address of its own in 127.0.0.0/8 (all of
//! it is on `lo` on Linux). A hosts file maps the pods' DNS names to those addresses; JVMs
//! read it through `-Djdk.net.hosts.file`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;

/// A pod as (namespace, name).
pub type PodKey = (String, String);

/// Hands out one loopback address per pod name and keeps the hosts file in step.
pub struct Addresses {
    /// Distinguishes this stand-in's addresses from another's on the same machine.
    seed: u64,
    hosts_file: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_pod: BTreeMap<PodKey, Entry>,
    taken: BTreeSet<Ipv4Addr>,
}

struct Entry {
    address: Ipv4Addr,
    names: Vec<String>,
}

impl Addresses {
    /// Addresses for pods served by one stand-in; its hosts file is `hosts_file`.
    pub fn new(seed: u64, hosts_file: PathBuf) -> Self {
        let addresses = Self {
            seed,
            hosts_file,
            state: Mutex::default(),
        };
        addresses.write(&State::default());
        addresses
    }

    /// The hosts file the processes resolve pod names with.
    pub fn hosts_file(&self) -> &Path {
        &self.hosts_file
    }

    /// The pod's address, the same for every pod of that name (its DNS name does not change
    /// either), and its names in the hosts file.
    pub fn assign(&self, pod: &Pod) -> Ipv4Addr {
        let key = key(pod);
        let names = dns_names(pod);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let address = match state.by_pod.get(&key) {
            Some(entry) if entry.names == names => return entry.address,
            Some(entry) => entry.address,
            None => {
                let mut attempt = 0u64;
                loop {
                    let candidate = self.candidate(&key, attempt);
                    if !state.taken.contains(&candidate) {
                        break candidate;
                    }
                    attempt += 1;
                }
            }
        };
        state.taken.insert(address);
        state.by_pod.insert(key, Entry { address, names });
        self.write(&state);
        address
    }

    /// The address of a pod, if it has one.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Ipv4Addr> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), name.to_string());
        state.by_pod.get(&key).map(|e| e.address)
    }

    /// A deterministic address in 127.1.0.1..127.254.255.254 for the pod and attempt.
    fn candidate(&self, key: &PodKey, attempt: u64) -> Ipv4Addr {
        let mut h = DefaultHasher::new();
        (self.seed, key, attempt).hash(&mut h);
        let n = h.finish();
        let b = |shift: u32, lo: u64, span: u64| (lo + (n >> shift) % span) as u8;
        Ipv4Addr::new(127, b(0, 1, 254), b(16, 0, 256), b(32, 1, 254))
    }

    fn write(&self, state: &State) {
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            let host = host.trim();
            if !host.is_empty() {
                text += &format!("127.0.0.1 {host}\n");
            }
        }
        for entry in state.by_pod.values() {
            text += &format!("{} {}\n", entry.address, entry.names.join(" "));
        }
        // Renamed into place: a reader never sees half a file.
        let tmp = self.hosts_file.with_extension("tmp");
        if let Err(e) =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.hosts_file))
        {
            eprintln!("stand-in: writing {}: {e}", self.hosts_file.display());
        }
    }
}

/// The pod's (namespace, name).
pub fn key(pod: &Pod) -> PodKey {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// The names cluster DNS gives the pod: `<hostname>.<subdomain>.<namespace>.svc[.cluster.local]`
/// when it has a subdomain (a StatefulSet's pods do), and its hostname.
fn dns_names(pod: &Pod) -> Vec<String> {
    let (namespace, name) = key(pod);
    let spec = pod.spec.as_ref();
    let hostname = spec
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| name.clone());
    let mut names = Vec::new();
    if let Some(sub) = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        let fqdn = format!("{hostname}.{sub}.{namespace}.svc");
        names.push(format!("{fqdn}.cluster.local"));
        names.push(fqdn);
    }
    names.push(hostname);
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, sub: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {"containers": [], "hostname": name, "subdomain": sub},
        }))
        .unwrap()
    }

    #[test]
    fn each_pod_name_gets_its_own_stable_address_and_its_dns_names() {
        let dir = std::env::temp_dir().join(format!("standin-addr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let addresses = Addresses::new(7, dir.join("hosts"));
        let a = addresses.assign(&pod("ns", "app-0", Some("app")));
        let b = addresses.assign(&pod("ns", "app-1", Some("app")));
        assert_ne!(a, b);
        assert!(a.is_loopback() && b.is_loopback());
        assert_ne!(a, Ipv4Addr::LOCALHOST);
        assert_eq!(addresses.assign(&pod("ns", "app-0", Some("app"))), a);
        let hosts = std::fs::read_to_string(dir.join("hosts")).unwrap();
        assert!(
            hosts.contains(&format!(
                "{a} app-0.app.ns.svc.cluster.local app-0.app.ns.svc app-0\n"
            )),
            "{hosts}"
        );
        assert!(hosts.starts_with("127.0.0.1 localhost\n"), "{hosts}");
        let other = Addresses::new(8, dir.join("hosts2"));
        assert_ne!(other.assign(&pod("ns", "app-0", Some("app"))), a);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
