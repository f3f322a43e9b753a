//! Errors of a reconcile, as bounded categories a user can act on.

use thiserror::Error;

/// Why a reconcile failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API {verb} {kind} {name}: {source}")]
    Kube {
        /// What was attempted (get, list, apply, patch, delete).
        verb: &'static str,
        /// Kind of the object.
        kind: &'static str,
        /// Name of the object.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The StreamApp has no namespace (it is namespaced; the API always sets one).
    #[error("StreamApp {0} has no namespace")]
    MissingNamespace(String),
}

impl Error {
    /// Every value `category` returns, so the error counter can start each one at zero.
    pub const CATEGORIES: [&'static str; 3] = ["ApplyFailed", "KubeApiError", "MissingNamespace"];

    /// A short, bounded label for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube { verb: "apply", .. } => "ApplyFailed",
            Error::Kube { .. } => "KubeApiError",
            Error::MissingNamespace(_) => "MissingNamespace",
        }
    }
}

/// Wraps a client error with what was attempted on which object.
pub fn kube_err(
    verb: &'static str,
    kind: &'static str,
    name: &str,
) -> impl FnOnce(kube::Error) -> Error + use<> {
    let name = name.to_string();
    move |source| Error::Kube {
        verb,
        kind,
        name,
        source,
    }
}

/// Result of operator code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_listed() {
        let kube = |verb| Error::Kube {
            verb,
            kind: "StatefulSet",
            name: "x".into(),
            source: kube::Error::Service("refused".into()),
        };
        for e in [
            kube("apply"),
            kube("get"),
            Error::MissingNamespace("x".into()),
        ] {
            assert!(
                Error::CATEGORIES.contains(&e.category()),
                "{}",
                e.category()
            );
        }
    }
}
