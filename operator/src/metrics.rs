//! Prometheus metrics of the operator. Every label has a bounded set of values: results,
//! error categories, condition types and statuses; never an object name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crd::StreamApp;

/// Labels of the reconcile counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: &'static str,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// A bounded error category (`Error::category`).
    pub category: &'static str,
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    reconcile_duration: Histogram,
    kafka_check_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        Self {
            reconciles: Family::default(),
            errors: Family::default(),
            reconcile_duration: Histogram::new(buckets),
            kafka_check_duration: Histogram::new(buckets),
        }
    }
}

impl Metrics {
    /// Registers the metrics in `registry` under the `kstreams` prefix.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("kstreams");
        r.register(
            "reconciles",
            "Reconciles of StreamApps by result",
            self.reconciles.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed reconciles by error category",
            self.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            self.reconcile_duration.clone(),
        );
        r.register(
            "kafka_check_duration_seconds",
            "Duration of one Kafka check of a StreamApp",
            self.kafka_check_duration.clone(),
        );
    }

    /// Records a finished reconcile.
    pub fn reconciled(&self, took: Duration, error: Option<&'static str>) {
        self.reconcile_duration.observe(took.as_secs_f64());
        let result = if error.is_some() { "error" } else { "success" };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        if let Some(category) = error {
            self.errors.get_or_create(&ErrorLabels { category }).inc();
        }
    }

    /// Records one Kafka check.
    pub fn kafka_checked(&self, took: Duration) {
        self.kafka_check_duration.observe(took.as_secs_f64());
    }
}

/// Gauges read from the StreamApp watch cache at scrape time, so deleted apps never linger:
/// `kstreams_apps{condition,status}` and the per-app processing and restore lag.
#[derive(Debug)]
pub struct AppGauges(pub Vec<Store<StreamApp>>);

impl Collector for AppGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for app in self.0.iter().flat_map(|s| s.state()) {
            for c in app.status.iter().flat_map(|s| s.conditions.iter()) {
                *counts
                    .entry((c.type_.clone(), c.status.clone()))
                    .or_default() += 1;
            }
        }
        let mut family = encoder.encode_descriptor(
            "kstreams_apps",
            "StreamApps by condition type and status",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for ((condition, status), n) in counts {
            let labels = [("condition", condition), ("status", status)];
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        // One series per app: bounded by the number of StreamApps, like kube-state-metrics.
        let lags: Vec<_> = self
            .0
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|app| {
                let kafka = app.status.as_ref()?.kafka.as_ref()?;
                let labels = [
                    (
                        "namespace",
                        app.metadata.namespace.clone().unwrap_or_default(),
                    ),
                    ("name", app.metadata.name.clone().unwrap_or_default()),
                ];
                Some((labels, kafka.processing_lag_total, kafka.restore_lag_total))
            })
            .collect();
        let mut processing = encoder.encode_descriptor(
            "kstreams_app_processing_lag_records",
            "Records the app has not processed yet (sum over its input partitions, when known)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (labels, lag, _) in &lags {
            if let Some(lag) = lag {
                ConstGauge::new(*lag).encode(processing.encode_family(labels)?)?;
            }
        }
        let mut restore = encoder.encode_descriptor(
            "kstreams_app_restore_lag_records",
            "Changelog records the app's instances still lack (when known)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (labels, _, lag) in &lags {
            if let Some(lag) = lag {
                ConstGauge::new(*lag).encode(restore.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}
