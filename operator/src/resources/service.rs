//! The headless Service giving each instance a stable DNS name.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use super::{app_name, child_meta, selector_labels};
use crate::crd::StreamApp;

/// Name of the interactive-queries port.
pub const IQ_PORT_NAME: &str = "iq";

/// The app's headless Service.
pub fn service(app: &StreamApp) -> Service {
    let ports = app.spec.interactive_queries.as_ref().map(|iq| {
        vec![ServicePort {
            name: Some(IQ_PORT_NAME.into()),
            port: iq.port,
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }]
    });
    Service {
        metadata: child_meta(app, app_name(app)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            // Peers must find each other (interactive queries, application.server) while
            // still restoring, before they report Ready.
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(app)),
            ports,
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
