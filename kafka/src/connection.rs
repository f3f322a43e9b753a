//! How to reach one Kafka cluster, and its mapping to librdkafka settings.

use std::fmt;

/// Kafka's `security.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The protocol of a connection with or without TLS and SASL: the one rule the app's
    /// settings and the operator's own clients both follow, so the two reach the same brokers.
    pub fn of(tls: bool, sasl: bool) -> Self {
        match (tls, sasl) {
            (false, false) => Self::Plaintext,
            (true, false) => Self::Ssl,
            (false, true) => Self::SaslPlaintext,
            (true, true) => Self::SaslSsl,
        }
    }

    /// The value of `security.protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

/// Connection settings of a Kafka cluster, filled by the reconciler from the StreamApp's
/// `spec.kafka` and its Secrets. Two apps with equal settings share clients.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct KafkaConnection {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// The security protocol; inferred from the other fields when unset (TLS material ->
    /// SSL, a SASL mechanism -> SASL_*).
    pub security_protocol: Option<SecurityProtocol>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    /// SASL username.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<String>,
    /// PEM CA certificate(s) for the brokers; unset = the system's trust store.
    pub ca_pem: Option<String>,
    /// PEM client certificate (mutual TLS).
    pub client_cert_pem: Option<String>,
    /// PEM private key of the client certificate.
    pub client_key_pem: Option<String>,
}

impl KafkaConnection {
    /// A plaintext connection to `bootstrap_servers`.
    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Default::default()
        }
    }

    /// The security protocol in effect.
    pub fn protocol(&self) -> SecurityProtocol {
        if let Some(p) = self.security_protocol {
            return p;
        }
        let tls = self.ca_pem.is_some()
            || self.client_cert_pem.is_some()
            || self.client_key_pem.is_some();
        SecurityProtocol::of(tls, self.sasl_mechanism.is_some())
    }

    /// librdkafka settings for these connection settings (no client-role settings).
    pub fn client_settings(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("bootstrap.servers", self.bootstrap_servers.clone()),
            ("security.protocol", self.protocol().as_str().to_string()),
        ];
        let pairs = [
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.pem", &self.ca_pem),
            ("ssl.certificate.pem", &self.client_cert_pem),
            ("ssl.key.pem", &self.client_key_pem),
        ];
        for (key, value) in pairs {
            if let Some(v) = value {
                out.push((key, v.clone()));
            }
        }
        out
    }
}

/// Prints what identifies the connection and hides every secret.
impl fmt::Debug for KafkaConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn set<T>(o: &Option<T>) -> &'static str {
            if o.is_some() { "<set>" } else { "<unset>" }
        }
        f.debug_struct("KafkaConnection")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.protocol().as_str())
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &set(&self.sasl_username))
            .field("sasl_password", &set(&self.sasl_password))
            .field("ca_pem", &set(&self.ca_pem))
            .field("client_cert_pem", &set(&self.client_cert_pem))
            .field("client_key_pem", &set(&self.client_key_pem))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_protocol() {
        let mut c = KafkaConnection::plaintext("k:9092");
        assert_eq!(c.protocol().as_str(), "PLAINTEXT");
        c.sasl_mechanism = Some("SCRAM-SHA-512".into());
        assert_eq!(c.protocol().as_str(), "SASL_PLAINTEXT");
        c.ca_pem = Some("pem".into());
        assert_eq!(c.protocol().as_str(), "SASL_SSL");
        c.security_protocol = Some(SecurityProtocol::Ssl);
        assert_eq!(c.protocol().as_str(), "SSL");
    }

    #[test]
    fn maps_to_librdkafka_settings() {
        let c = KafkaConnection {
            bootstrap_servers: "k:9093".into(),
            sasl_mechanism: Some("PLAIN".into()),
            sasl_username: Some("u".into()),
            sasl_password: Some("p".into()),
            ca_pem: Some("CA".into()),
            client_cert_pem: Some("CERT".into()),
            client_key_pem: Some("KEY".into()),
            ..Default::default()
        };
        let s = c.client_settings();
        for kv in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "p"),
            ("ssl.ca.pem", "CA"),
            ("ssl.certificate.pem", "CERT"),
            ("ssl.key.pem", "KEY"),
        ] {
            assert!(s.iter().any(|(k, v)| *k == kv.0 && v == kv.1), "{kv:?}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = KafkaConnection {
            bootstrap_servers: "k:9093".into(),
            sasl_username: Some("alice".into()),
            sasl_password: Some("hunter2".into()),
            client_key_pem: Some("-----BEGIN PRIVATE KEY-----".into()),
            ..Default::default()
        };
        let s = format!("{c:?}");
        assert!(s.contains("k:9093"));
        for secret in ["alice", "hunter2", "PRIVATE"] {
            assert!(!s.contains(secret), "{s}");
        }
    }
}
