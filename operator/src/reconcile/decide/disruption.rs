//! The disruption budget follows the app's state: while an instance restores, a voluntary
//! eviction (a node drain) would stack a second restore on the first, so none is allowed;
//! after `stepTimeoutSeconds` of continuous restoring one is allowed again, so a stuck restore
//! never blocks a drain forever.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::events::EventType;

use super::{Facts, Notice};
use crate::crd::condition;
use crate::resources::pdb::Budget;

/// The budget for `facts` while `restoring` says what restores (if anything), with the
/// Events its change deserves and when it changes by itself (the allowance expiring).
pub fn budget(
    facts: &Facts,
    restoring: Option<&str>,
    allowance: Duration,
) -> (Budget, Vec<Notice>, Option<Duration>) {
    let live = facts
        .observed
        .pdb
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.max_unavailable.as_ref())
        .and_then(|m| match m {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(_) => None,
        });
    let Some(what) = restoring else {
        let notices = (live == Some(0))
            .then(|| Notice {
                type_: EventType::Normal,
                reason: "DisruptionsAllowed",
                note: "no instance restores: the PodDisruptionBudget allows one voluntary disruption again".into(),
            })
            .into_iter()
            .collect();
        return (Budget::ONE, notices, None);
    };
    // Since when the app restores: the Restoring condition's transition, or now.
    let since = facts
        .app
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == condition::RESTORING)
        })
        .filter(|c| c.status == "True")
        .map(|c| c.last_transition_time.0)
        .unwrap_or(facts.now);
    let elapsed = facts.now.duration_since(since).unsigned_abs();
    if elapsed >= allowance {
        let notices = (live == Some(0))
            .then(|| Notice {
                type_: EventType::Warning,
                reason: "RestoreTooLong",
                note: format!(
                    "{what} for {}s, longer than spec.rollout.stepTimeoutSeconds: the PodDisruptionBudget allows one voluntary disruption again so a drain is not blocked forever",
                    elapsed.as_secs()
                ),
            })
            .into_iter()
            .collect();
        return (Budget::ONE, notices, None);
    }
    let notices = (live != Some(0))
        .then(|| Notice {
            type_: EventType::Normal,
            reason: "DisruptionsBlocked",
            note: format!(
                "{what}: the PodDisruptionBudget allows no voluntary disruption until it has caught up"
            ),
        })
        .into_iter()
        .collect();
    (Budget::NONE, notices, Some(allowance - elapsed))
}
