//! The operator under test: the CRD installed from the Rust types, and a controller running
//! in the test process, scoped to the test's namespace so tests never share one.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use std::sync::Arc;
use std::time::Duration;

use kstreams_operator::controller;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::metrics::Metrics;
use kstreams_operator::reconcile::context::Context;
use kstreams_operator::reconcile::kafka::KafkaSettings;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt};
use tokio::sync::watch;

/// Applies the StreamApp CRD (idempotent) and waits until the apiserver serves it.
pub async fn install_crd(client: &Client) {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = StreamApp::crd();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("kstreams-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("installing CRD {name}: {e}"));
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established within 30s")
    .unwrap();
}

/// A controller reconciling StreamApps in one namespace; stopped when dropped.
pub struct Operator {
    /// What the controller's reconciles share, to look at the Kafka step's state.
    pub ctx: Arc<Context>,
    task: tokio::task::JoinHandle<()>,
    _stop: watch::Sender<bool>,
}

impl Operator {
    /// Installs the CRD and starts a controller for `namespace` that checks Kafka every 5 s,
    /// with the default grace and stall limits.
    pub async fn start(client: &Client, namespace: &str) -> Self {
        let kafka = KafkaSettings {
            refresh: Some(Duration::from_secs(5)),
            ..KafkaSettings::default()
        };
        Self::start_with(client, namespace, kafka).await
    }

    /// As [`Operator::start`], with Kafka checks off: Ready means the pods are Ready.
    pub async fn start_without_kafka(client: &Client, namespace: &str) -> Self {
        let kafka = KafkaSettings {
            refresh: None,
            ..KafkaSettings::default()
        };
        Self::start_with(client, namespace, kafka).await
    }

    /// As [`Operator::start`], with the Kafka step's settings given (a short
    /// `member_grace` or `stall` to see them pass within a test).
    pub async fn start_with(client: &Client, namespace: &str, kafka: KafkaSettings) -> Self {
        // KSO_TEST_LOG=<filter> shows the operator's own log in a failing test's output.
        if let Ok(filter) = std::env::var("KSO_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        install_crd(client).await;
        let ctx = Arc::new(Context::with_settings(
            client.clone(),
            Some("test".into()),
            Arc::new(Metrics::default()),
            kafka,
        ));
        let (stop, stopped) = watch::channel(false);
        let namespaces = vec![namespace.to_string()];
        let running = ctx.clone();
        let task = tokio::spawn(async move {
            controller::run(running, &namespaces, 4, stopped).await;
        });
        Self {
            ctx,
            task,
            _stop: stop,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
