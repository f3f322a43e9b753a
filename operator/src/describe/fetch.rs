//! What `describe` reads: the StreamApp, its pods and their nodes, through the client the
//! environment configures (KUBECONFIG, the kubeconfig's context, or the in-cluster account).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client, Config};
use thiserror::Error;

use crate::crd::StreamApp;
use crate::resources::selector_string;

/// Why `describe` could not read the app.
#[derive(Debug, Error)]
pub enum DescribeError {
    /// No cluster configuration was found (no KUBECONFIG, ~/.kube/config or service account).
    #[error("no cluster to talk to: {0}")]
    Config(#[source] kube::config::InferConfigError),
    /// The configuration did not give a usable client.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The StreamApp does not exist.
    #[error("StreamApp {namespace}/{name} not found")]
    NotFound {
        /// Namespace looked in.
        namespace: String,
        /// Name looked for.
        name: String,
    },
    /// A read failed or was refused.
    #[error("{verb} {what}: {source}")]
    Kube {
        /// get or list.
        verb: &'static str,
        /// What was read.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Everything `render` needs.
#[derive(Debug)]
pub struct Described {
    /// The StreamApp.
    pub app: StreamApp,
    /// Its pods.
    pub pods: Vec<Pod>,
    /// The nodes its pods run on, those that could be read.
    pub nodes: Vec<Node>,
}

/// Reads StreamApp `name` in `namespace` (default: the kubeconfig context's namespace, or
/// `default`), its pods and their nodes.
pub async fn fetch(name: &str, namespace: Option<&str>) -> Result<Described, DescribeError> {
    let config = Config::infer().await.map_err(DescribeError::Config)?;
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = Client::try_from(config).map_err(DescribeError::Client)?;
    let app = Api::<StreamApp>::namespaced(client.clone(), &namespace)
        .get_opt(name)
        .await
        .map_err(|source| DescribeError::Kube {
            verb: "get",
            what: format!("StreamApp {namespace}/{name}"),
            source,
        })?
        .ok_or_else(|| DescribeError::NotFound {
            namespace: namespace.clone(),
            name: name.to_string(),
        })?;
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(&selector_string(&app)))
        .await
        .map_err(|source| DescribeError::Kube {
            verb: "list",
            what: format!("pods of {namespace}/{name}"),
            source,
        })?
        .items;
    let node_names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    let nodes_api = Api::<Node>::all(client);
    let mut nodes = Vec::new();
    for node in node_names {
        match nodes_api.get_opt(&node).await {
            Ok(Some(n)) => nodes.push(n),
            Ok(None) => {}
            // Nodes are cluster-scoped: a user who may read the app may still not read them,
            // and the zone is worth less than the rest of the view.
            Err(kube::Error::Api(status)) if status.code == 403 => {}
            Err(source) => {
                return Err(DescribeError::Kube {
                    verb: "get",
                    what: format!("node {node}"),
                    source,
                });
            }
        }
    }
    Ok(Described { app, pods, nodes })
}
