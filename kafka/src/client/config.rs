//! Settings of the client pool.

use std::time::Duration;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Limit of each librdkafka call.
    pub request_timeout: Duration,
    /// Clients unused for this long are closed.
    pub idle_timeout: Duration,
    /// Enables librdkafka statistics (for request counting, see [`ClientPool::request_stats`]).
    pub statistics_interval: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            statistics_interval: None,
        }
    }
}
