//! The TLS client settings of a cluster for the wire connections: the same CA, client
//! certificate and key the librdkafka clients get, through rustls (ring).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use crate::connection::KafkaConnection;

/// A connector for `conn`: its CA (or the system's roots without one), and its client
/// certificate when it has one. Broker host names are verified against their certificates,
/// as librdkafka does by default (`ssl.endpoint.identification.algorithm=https`).
pub(crate) fn connector(conn: &KafkaConnection) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    match &conn.ca_pem {
        Some(pem) => {
            let mut any = false;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("CA certificate: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA certificate: {e}"))?;
                any = true;
            }
            if !any {
                return Err("CA certificate: no PEM certificate found".into());
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots);
    let config = match (&conn.client_cert_pem, &conn.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs both the certificate and its key".into()),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}
