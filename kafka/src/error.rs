//! Why a Kafka check failed, as bounded categories a user can act on.

use std::time::Duration;

use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use thiserror::Error;

/// Why talking to Kafka failed. A missing group or a topic deleted mid-check are not errors:
/// they show in the status.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KafkaError {
    /// No broker could be reached (DNS, connection refused, network).
    #[error("cannot reach Kafka at {bootstrap}: {detail}")]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// What librdkafka reported.
        detail: String,
    },
    /// SASL authentication or the TLS handshake failed.
    #[error("Kafka at {bootstrap} rejected the connection (credentials or TLS): {detail}")]
    AuthFailed {
        /// The bootstrap servers.
        bootstrap: String,
        /// What librdkafka reported.
        detail: String,
    },
    /// The principal lacks an ACL for an operation.
    #[error(
        "Kafka at {bootstrap} denied {operation}: {detail} (does the principal have Describe ACLs on the app's topics and group?)"
    )]
    NotAuthorized {
        /// The bootstrap servers.
        bootstrap: String,
        /// What was attempted.
        operation: &'static str,
        /// What the broker said.
        detail: String,
    },
    /// A request got no answer in time.
    #[error("Kafka at {bootstrap} did not answer {operation} within {timeout:?}")]
    Timeout {
        /// The bootstrap servers.
        bootstrap: String,
        /// What was attempted.
        operation: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// The connection settings are invalid (e.g. a malformed PEM or unknown mechanism).
    #[error("invalid Kafka client settings for {bootstrap}: {detail}")]
    InvalidConfig {
        /// The bootstrap servers.
        bootstrap: String,
        /// What librdkafka rejected.
        detail: String,
    },
    /// A reset's offsets cannot be committed: the group has members (or is rebalancing), and
    /// the broker accepts commits from outside a group only while it is Empty.
    #[error(
        "consumer group {group} is not empty ({members} members joined): its offsets can be reset only while no instance of the app runs; scale the app to 0 and wait until the group is Empty"
    )]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// Members joined when the reset was refused (0 while a rebalance ends).
        members: usize,
    },
    /// The broker refused a group config value (above its cap, unknown, malformed).
    #[error("Kafka at {bootstrap} refused config {key}={value} of group {group}: {detail}")]
    ConfigRejected {
        /// The bootstrap servers.
        bootstrap: String,
        /// The group.
        group: String,
        /// The config key.
        key: String,
        /// The value refused.
        value: String,
        /// What the broker said.
        detail: String,
    },
    /// Any other failure of a request.
    #[error("Kafka at {bootstrap}: {operation} failed: {detail}")]
    Request {
        /// The bootstrap servers.
        bootstrap: String,
        /// What was attempted.
        operation: &'static str,
        /// What librdkafka or the broker reported.
        detail: String,
    },
}

impl KafkaError {
    /// A short CamelCase label for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            KafkaError::Unreachable { .. } => "KafkaUnreachable",
            KafkaError::AuthFailed { .. } => "KafkaAuthFailed",
            KafkaError::NotAuthorized { .. } => "KafkaNotAuthorized",
            KafkaError::Timeout { .. } => "KafkaTimeout",
            KafkaError::InvalidConfig { .. } => "KafkaInvalidConfig",
            KafkaError::GroupNotEmpty { .. } => "KafkaGroupNotEmpty",
            KafkaError::ConfigRejected { .. } => "KafkaConfigRejected",
            KafkaError::Request { .. } => "KafkaRequestFailed",
        }
    }
}

/// The librdkafka error code inside an rdkafka error, if any.
pub(crate) fn code_of(e: &RdError) -> Option<Code> {
    match e {
        RdError::AdminOp(c)
        | RdError::Global(c)
        | RdError::GroupListFetch(c)
        | RdError::MetadataFetch(c)
        | RdError::OffsetFetch(c) => Some(*c),
        other => other.rdkafka_error_code(),
    }
}

/// Whether a code means the brokers could not be reached at all.
pub(crate) fn is_transport(code: Code) -> bool {
    matches!(
        code,
        Code::AllBrokersDown | Code::BrokerTransportFailure | Code::Resolve
    )
}

/// Whether a code means authentication or TLS failed.
pub(crate) fn is_auth(code: Code) -> bool {
    matches!(
        code,
        Code::Authentication | Code::SaslAuthenticationFailed | Code::SSL
    )
}

/// The TLS or SASL failure a librdkafka log line reports, if any. A failed handshake reaches
/// the error callback only when the client is next polled, if at all (TLS), while its `FAIL`
/// log line is emitted at once from the broker thread.
pub(crate) fn auth_failure_in_log(fac: &str, message: &str) -> Option<Code> {
    if fac != "FAIL" {
        return None;
    }
    if message.contains("SSL handshake failed") || message.contains("in state SSL_HANDSHAKE") {
        Some(Code::SSL)
    } else if message.contains("SASL authentication error") || message.contains("in state AUTH_") {
        Some(Code::Authentication)
    } else {
        None
    }
}

/// Classifies a failed call. `client_error` is the last client-level error librdkafka
/// reported while the call ran (a transport or auth failure explains a timeout better than
/// the timeout itself).
pub(crate) fn classify(
    bootstrap: &str,
    operation: &'static str,
    timeout: Duration,
    err: &RdError,
    client_error: Option<(Code, String)>,
) -> KafkaError {
    let bootstrap = bootstrap.to_string();
    let code = code_of(err);
    if let Some((c, detail)) = client_error {
        if is_auth(c) {
            return KafkaError::AuthFailed { bootstrap, detail };
        }
        if is_transport(c) && code.is_none_or(is_timeout) {
            return KafkaError::Unreachable { bootstrap, detail };
        }
    }
    match code {
        Some(c) if is_auth(c) => KafkaError::AuthFailed {
            bootstrap,
            detail: err.to_string(),
        },
        Some(c) if is_transport(c) => KafkaError::Unreachable {
            bootstrap,
            detail: err.to_string(),
        },
        Some(c) if is_timeout(c) => KafkaError::Timeout {
            bootstrap,
            operation,
            timeout,
        },
        Some(
            Code::TopicAuthorizationFailed
            | Code::GroupAuthorizationFailed
            | Code::ClusterAuthorizationFailed,
        ) => KafkaError::NotAuthorized {
            bootstrap,
            operation,
            detail: err.to_string(),
        },
        _ if matches!(err, RdError::ClientConfig(..) | RdError::ClientCreation(_)) => {
            KafkaError::InvalidConfig {
                bootstrap,
                detail: err.to_string(),
            }
        }
        _ => KafkaError::Request {
            bootstrap,
            operation,
            detail: err.to_string(),
        },
    }
}

fn is_timeout(code: Code) -> bool {
    matches!(code, Code::OperationTimedOut | Code::RequestTimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn timeout_with_transport_failure_is_unreachable() {
        let e = RdError::MetadataFetch(Code::OperationTimedOut);
        let got = classify(
            "k:9092",
            "metadata",
            T,
            &e,
            Some((Code::AllBrokersDown, "1/1 brokers are down".into())),
        );
        assert_eq!(got.reason(), "KafkaUnreachable");
        assert!(got.to_string().contains("k:9092"));
        assert_eq!(
            classify("k:9092", "metadata", T, &e, None).reason(),
            "KafkaTimeout"
        );
    }

    #[test]
    fn tls_and_sasl_failures_are_read_from_fail_log_lines() {
        // Lines as librdkafka 2.12 logs them.
        let tls = "sasl_ssl://127.0.0.1:29094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified";
        let tls_again = "sasl_ssl://127.0.0.1:29094/bootstrap: error:0A000086:SSL routines::certificate verify failed (after 7ms in state SSL_HANDSHAKE)";
        let sasl = "sasl_ssl://127.0.0.1:29094/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 369ms in state AUTH_REQ)";
        let down = "127.0.0.1:29094/bootstrap: Connect to ipv4#127.0.0.1:29094 failed: Connection refused (after 0ms in state CONNECT)";
        assert_eq!(auth_failure_in_log("FAIL", tls), Some(Code::SSL));
        assert_eq!(auth_failure_in_log("FAIL", tls_again), Some(Code::SSL));
        assert_eq!(
            auth_failure_in_log("FAIL", sasl),
            Some(Code::Authentication)
        );
        assert_eq!(auth_failure_in_log("FAIL", down), None);
        assert_eq!(auth_failure_in_log("CONFWARN", sasl), None);
    }

    #[test]
    fn auth_and_acl_failures() {
        let e = RdError::MetadataFetch(Code::OperationTimedOut);
        let got = classify(
            "k",
            "metadata",
            T,
            &e,
            Some((Code::Authentication, "SASL authentication error".into())),
        );
        assert_eq!(got.reason(), "KafkaAuthFailed");
        let e = RdError::GroupListFetch(Code::GroupAuthorizationFailed);
        assert_eq!(
            classify("k", "describe group", T, &e, None).reason(),
            "KafkaNotAuthorized"
        );
    }
}
