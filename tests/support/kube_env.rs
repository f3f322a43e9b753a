//! The Kubernetes side: a client for the e2e cluster and throwaway namespaces.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};

/// A client for the cluster `KUBECONFIG` points at; panics with the way to fix it if the
/// stack is not there.
pub async fn client() -> Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: these tests need the local cluster. Run them with `make test`, \
             or `make up` then `eval \"$(e2e/cluster.sh env)\"`"
        );
    }
    let client = Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("cannot build a client from KUBECONFIG: {e}"));
    if let Err(e) = client.apiserver_version().await {
        panic!("the cluster in KUBECONFIG does not answer ({e}); is `e2e/cluster.sh up` running?");
    }
    client
}

/// A namespace created for one test and deleted when the value is dropped (also on panic).
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>`.
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = crate::unique(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("kstreams.dev/test".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Self {
            name,
            client: client.clone(),
        }
    }

    /// A typed API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("KSO_KEEP_NAMESPACES").is_some() {
            eprintln!("keeping namespace {} (KSO_KEEP_NAMESPACES)", self.name);
            return;
        }
        let name = self.name.clone();
        // Drop cannot await, and may run while the test's runtime is shutting down: delete
        // from a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for namespace cleanup");
            rt.block_on(async {
                if let Ok(client) = Client::try_default().await {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await;
                }
            });
        })
        .join();
    }
}
