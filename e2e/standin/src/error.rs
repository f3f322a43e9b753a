//! Why a pod cannot run: each variant is a reason the pod's container status shows.

/// Why the stand-in cannot start or serve a pod.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A registry file is unreadable or invalid.
    #[error("image registry: {0}")]
    Registry(String),
    /// An image's build script failed.
    #[error("building image {0}: {1}")]
    ImageBuild(String, String),
    /// The pod uses something the stand-in does not support (a second container, a hostPath).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A ConfigMap, Secret, key or PVC the pod needs is missing.
    #[error("{0}")]
    Missing(String),
    /// The Kubernetes API refused or failed a request.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A local file or process operation failed.
    #[error("{0}")]
    Local(String),
}

impl Error {
    /// The reason as a container's waiting state spells it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Registry(_) | Self::ImageBuild(_, _) => "ImageBuildFailed",
            Self::Unsupported(_) => "Unsupported",
            Self::Missing(_) => "CreateContainerConfigError",
            Self::Kube(_) => "KubeAPIError",
            Self::Local(_) => "RunContainerError",
        }
    }
}
