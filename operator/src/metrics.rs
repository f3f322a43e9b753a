//! Prometheus metrics of the operator. Every label has a bounded set of values: results,
//! error categories, condition types and statuses; the per-app gauges add the app's namespace
//! and name, one series per StreamApp (and condition), as kube-state-metrics does.

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

use crate::crd::StreamAppSummary;

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

/// Labels of the child apply counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyLabels {
    /// The child's kind.
    pub kind: &'static str,
    /// `applied`, or `skipped` when the apply would have changed nothing.
    pub result: &'static str,
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    child_applies: Family<ApplyLabels, Counter>,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    baseline_failures: Family<ErrorLabels, Counter>,
    reconcile_duration: Histogram,
    kafka_check_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let metrics = Self {
            child_applies: Family::default(),
            reconciles: Family::default(),
            errors: Family::default(),
            baseline_failures: Family::default(),
            reconcile_duration: Histogram::new(buckets),
            kafka_check_duration: Histogram::new(buckets),
        };
        // Every series from the start, at zero: a counter that appears only with its first
        // increment hides that increment from rate() and increase(), and an empty family is
        // not exported at all.
        for result in ["success", "error"] {
            metrics
                .reconciles
                .get_or_create_owned(&ResultLabels { result });
        }
        for category in crate::error::Error::CATEGORIES {
            metrics
                .errors
                .get_or_create_owned(&ErrorLabels { category });
        }
        for category in crate::reconcile::baseline::BaselineError::CATEGORIES {
            metrics
                .baseline_failures
                .get_or_create_owned(&ErrorLabels { category });
        }
        metrics
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
            "kafka_baseline_failures",
            "Failures to read or keep an app's restore-lag baseline in its ConfigMap, by category",
            self.baseline_failures.clone(),
        );
        r.register(
            "child_applies",
            "Server-side applies of children by kind, and those skipped as changing nothing",
            self.child_applies.clone(),
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

    /// Reconciles finished so far that ended in `result` ("success" or "error").
    pub fn reconciles(&self, result: &'static str) -> u64 {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .get()
    }

    /// Counts a server-side apply of a child.
    pub fn applied(&self, kind: &'static str) {
        self.child_applies
            .get_or_create(&ApplyLabels {
                kind,
                result: "applied",
            })
            .inc();
    }

    /// Counts an apply skipped because it would change nothing.
    pub fn apply_skipped(&self, kind: &'static str) {
        self.child_applies
            .get_or_create(&ApplyLabels {
                kind,
                result: "skipped",
            })
            .inc();
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

    /// Records a failure to read or keep a restore-lag baseline (`BaselineError::category`).
    pub fn baseline_failed(&self, category: &'static str) {
        self.baseline_failures
            .get_or_create(&ErrorLabels { category })
            .inc();
    }

    /// Records one Kafka check.
    pub fn kafka_checked(&self, took: Duration) {
        self.kafka_check_duration.observe(took.as_secs_f64());
    }
}

/// Gauges read from the StreamApps' summary cache at scrape time, so deleted apps never linger:
/// `kstreams_apps{condition,status}`, `kstreams_app_condition{namespace,name,condition,status}`
/// and the per-app processing and restore lag.
#[derive(Debug)]
pub struct AppGauges(pub Vec<Store<StreamAppSummary>>);

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
        // Per app as well: every replica of the operator exports the gauges of its own cache,
        // and only per-app series can be deduplicated (max by namespace and name) in a query.
        let mut per_app = encoder.encode_descriptor(
            "kstreams_app_condition",
            "1 for each condition of each StreamApp, labelled with its current status",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for app in self.0.iter().flat_map(|s| s.state()) {
            for c in app.status.iter().flat_map(|s| s.conditions.iter()) {
                let labels = [
                    (
                        "namespace",
                        app.metadata.namespace.clone().unwrap_or_default(),
                    ),
                    ("name", app.metadata.name.clone().unwrap_or_default()),
                    ("condition", c.type_.clone()),
                    ("status", c.status.clone()),
                ];
                ConstGauge::new(1).encode(per_app.encode_family(&labels)?)?;
            }
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

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher};
    use prometheus_client::encoding::text::encode;

    use super::*;

    fn scrape(apps: &[&str]) -> String {
        let (store, mut writer) = reflector::store::<StreamAppSummary>();
        for yaml in apps {
            let mut app: StreamAppSummary = serde_yaml::from_str(yaml).unwrap();
            app.trim();
            writer.apply_watcher_event(&watcher::Event::Apply(app));
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(AppGauges(vec![store])));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    const APP: &str = r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: NAME, namespace: shop}
spec: {image: x:1, kafka: {bootstrapServers: 'k:9092'}}
status:
  conditions:
  - {type: Ready, status: 'READY', reason: R, message: '', lastTransitionTime: '2026-03-01T10:00:00Z'}
  - {type: Restoring, status: 'False', reason: R, message: '', lastTransitionTime: '2026-03-01T10:00:00Z'}
  kafka: {lastChecked: '2026-03-01T10:00:00Z', processingLagTotal: 7}
"#;

    fn app(name: &str, ready: &str) -> String {
        APP.replace("NAME", name).replace("READY", ready)
    }

    #[test]
    fn each_app_has_one_series_per_condition_and_the_totals_count_them() {
        let text = scrape(&[&app("a", "True"), &app("b", "False")]);
        for series in [
            r#"kstreams_app_condition{namespace="shop",name="a",condition="Ready",status="True"} 1"#,
            r#"kstreams_app_condition{namespace="shop",name="b",condition="Ready",status="False"} 1"#,
            r#"kstreams_app_condition{namespace="shop",name="a",condition="Restoring",status="False"} 1"#,
            r#"kstreams_apps{condition="Ready",status="True"} 1"#,
            r#"kstreams_apps{condition="Restoring",status="False"} 2"#,
            r#"kstreams_app_processing_lag_records{namespace="shop",name="b"} 7"#,
        ] {
            assert!(
                text.lines().any(|l| l == series),
                "{series} missing:\n{text}"
            );
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("kstreams_app_condition{"))
                .count(),
            4,
            "{text}"
        );
        // No restore lag is known: no series, rather than a 0.
        assert!(
            !text.contains("kstreams_app_restore_lag_records{"),
            "{text}"
        );
    }

    #[test]
    fn every_counter_series_is_exported_at_zero_before_its_first_increment() {
        let metrics = Arc::new(Metrics::default());
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let text = || {
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            text
        };
        let fresh = text();
        for series in [
            r#"kstreams_reconciles_total{result="success"} 0"#,
            r#"kstreams_reconciles_total{result="error"} 0"#,
            r#"kstreams_reconcile_errors_total{category="ApplyFailed"} 0"#,
            r#"kstreams_reconcile_errors_total{category="KubeApiError"} 0"#,
            r#"kstreams_reconcile_errors_total{category="MissingNamespace"} 0"#,
            r#"kstreams_kafka_baseline_failures_total{category="BaselineWriteFailed"} 0"#,
        ] {
            assert!(
                fresh.lines().any(|l| l == series),
                "{series} missing:\n{fresh}"
            );
        }
        metrics.reconciled(Duration::from_millis(3), Some("KubeApiError"));
        let after = text();
        for series in [
            r#"kstreams_reconciles_total{result="error"} 1"#,
            r#"kstreams_reconcile_errors_total{category="KubeApiError"} 1"#,
            r#"kstreams_reconcile_errors_total{category="ApplyFailed"} 0"#,
            "kstreams_reconcile_duration_seconds_count 1",
        ] {
            assert!(
                after.lines().any(|l| l == series),
                "{series} missing:\n{after}"
            );
        }
    }
}
