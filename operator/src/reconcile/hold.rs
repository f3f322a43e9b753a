//! What holds the app at zero instances above every other decision: `spec.suspend`, or a reset
//! from `spec.reset` between its first step and its last. Pure; the decision applies the
//! hold, the judge reports it.

use super::verdict::Verdict;
use crate::crd::{ResetPhase, ResetStatus, StreamApp, condition};

/// Why the app runs no instances whatever its replicas say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A reset runs (or failed) and needs the app stopped.
    Reset {
        /// The reset's id.
        id: String,
        /// Where it stands.
        phase: ResetPhase,
        /// What the phase waits for, or why it failed.
        message: Option<String>,
    },
    /// `spec.suspend` is set.
    Suspended,
}

/// The hold on `app`, given the reset status its status records and the one this reconcile
/// computed: either holding keeps the app down, so the app goes down as soon as a reset
/// starts but comes back only once the status records that the last step before scaling up
/// is done. A reset outranks suspend.
pub fn of(
    app: &StreamApp,
    recorded: Option<&ResetStatus>,
    computed: Option<&ResetStatus>,
) -> Option<Hold> {
    let asked = app.spec.reset.as_ref().map(|r| r.id.as_str());
    let holding = |r: &&ResetStatus| asked == Some(r.id.as_str()) && r.phase.holds_app_down();
    if let Some(r) = computed.filter(holding).or(recorded.filter(holding)) {
        return Some(Hold::Reset {
            id: r.id.clone(),
            phase: r.phase,
            message: r.message.clone(),
        });
    }
    app.spec.suspend.then_some(Hold::Suspended)
}

impl Hold {
    /// The Progressing verdict while held.
    pub fn progressing(&self) -> Verdict {
        match self {
            Hold::Reset {
                phase: ResetPhase::Failed,
                message,
                ..
            } => Verdict::new(
                condition::PROGRESSING,
                false,
                "ResetFailed",
                message.clone().unwrap_or_default(),
            ),
            Hold::Reset { id, phase, .. } => Verdict::new(
                condition::PROGRESSING,
                true,
                "Resetting",
                format!("reset {id}: {}", phase_doing(*phase)),
            ),
            Hold::Suspended => Verdict::new(
                condition::PROGRESSING,
                false,
                "Suspended",
                "spec.suspend is set: the app runs no instances",
            ),
        }
    }

    /// The Ready verdict while held: not processing, and why.
    pub fn ready(&self) -> Verdict {
        let p = self.progressing();
        Verdict::new(condition::READY, false, &p.reason, p.message)
    }
}

/// What a reset phase does, as a user reads it.
pub fn phase_doing(phase: ResetPhase) -> &'static str {
    match phase {
        ResetPhase::Pending => "waiting to start",
        ResetPhase::ScalingDown => "scaling to 0 instances",
        ResetPhase::WaitingForEmptyGroup => "waiting for the consumer group to have no members",
        ResetPhase::ResettingOffsets => "moving the committed input offsets",
        ResetPhase::DeletingTopics => "deleting the internal topics",
        ResetPhase::WipingState => "deleting the state volumes",
        ResetPhase::ScalingUp => "scaling back",
        ResetPhase::Done => "done",
        ResetPhase::Refused => "refused",
        ResetPhase::Failed => "failed",
        ResetPhase::Adopted => "taken as applied",
    }
}

/// The `Suspended` and `Resetting` conditions.
pub fn verdicts(app: &StreamApp, reset: Option<&ResetStatus>) -> Vec<Verdict> {
    let suspended = if app.spec.suspend {
        Verdict::new(
            condition::SUSPENDED,
            true,
            "Suspended",
            "spec.suspend is set: 0 instances run; state volumes, internal topics and committed offsets are kept",
        )
    } else {
        Verdict::new(
            condition::SUSPENDED,
            false,
            "NotSuspended",
            "spec.suspend is not set",
        )
    };
    let asked = app.spec.reset.as_ref().map(|r| r.id.as_str());
    let resetting = match reset {
        Some(r) if asked.is_none() && r.phase.is_final() => Verdict::new(
            condition::RESETTING,
            false,
            "NoReset",
            format!(
                "no reset asked in spec.reset (the last, {}, ended {:?})",
                r.id, r.phase
            ),
        ),
        None => Verdict::new(
            condition::RESETTING,
            false,
            "NoReset",
            "no reset asked in spec.reset",
        ),
        Some(r) => {
            let message = |doing: &str| match &r.message {
                Some(m) => format!("reset {}: {doing}: {m}", r.id),
                None => format!("reset {}: {doing}", r.id),
            };
            match r.phase {
                ResetPhase::Done => Verdict::new(
                    condition::RESETTING,
                    false,
                    "ResetDone",
                    format!("reset {} done: {}", r.id, summary(r)),
                ),
                ResetPhase::Refused => Verdict::new(
                    condition::RESETTING,
                    false,
                    "ResetRefused",
                    message("refused, nothing changed"),
                ),
                ResetPhase::Failed if asked == Some(r.id.as_str()) => Verdict::new(
                    condition::RESETTING,
                    false,
                    "ResetFailed",
                    message(
                        "failed; the app stays at 0 instances until spec.reset.id changes or spec.reset is removed",
                    ),
                ),
                ResetPhase::Failed => Verdict::new(
                    condition::RESETTING,
                    false,
                    "ResetAbandoned",
                    message("did not finish"),
                ),
                ResetPhase::Adopted => Verdict::new(
                    condition::RESETTING,
                    false,
                    "ResetAdopted",
                    message("taken as applied"),
                ),
                phase => Verdict::new(
                    condition::RESETTING,
                    true,
                    &format!("{phase:?}"),
                    message(phase_doing(phase)),
                ),
            }
        }
    };
    vec![suspended, resetting]
}

/// The steps a finished reset took, in one line.
pub fn summary(r: &ResetStatus) -> String {
    r.steps
        .iter()
        .map(|s| format!("{:?}: {}", s.phase, s.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ResetSpec;
    use crate::reconcile::fixtures::APP;
    use crate::resources::testing::app;

    fn asking(id: &str) -> StreamApp {
        let mut a = app(APP);
        a.spec.reset = Some(
            serde_yaml::from_str::<ResetSpec>(&format!(
                "{{id: {id}, inputOffsets: Earliest, internalTopics: Delete, localState: Wipe}}"
            ))
            .unwrap(),
        );
        a
    }

    fn at(id: &str, phase: ResetPhase) -> ResetStatus {
        ResetStatus {
            id: id.into(),
            phase,
            started_at: None,
            finished_at: None,
            steps: vec![],
            message: None,
        }
    }

    #[test]
    fn the_app_comes_back_only_once_the_last_step_before_scaling_up_is_recorded() {
        let a = asking("r1");
        let wiping = at("r1", ResetPhase::WipingState);
        let up = at("r1", ResetPhase::ScalingUp);
        // This reconcile finished WipingState: its status is not written yet.
        assert!(of(&a, Some(&wiping), Some(&up)).is_some());
        // The next one reads ScalingUp recorded.
        assert_eq!(of(&a, Some(&up), Some(&up)), None);
        // Starting goes down at once.
        let pending = at("r1", ResetPhase::Pending);
        let down = at("r1", ResetPhase::ScalingDown);
        assert!(of(&a, Some(&pending), Some(&down)).is_some());
    }

    #[test]
    fn a_failed_reset_holds_until_its_id_changes_or_it_is_removed() {
        let failed = at("r1", ResetPhase::Failed);
        assert!(of(&asking("r1"), Some(&failed), Some(&failed)).is_some());
        assert_eq!(of(&asking("r2"), Some(&failed), None), None);
        let mut removed = asking("r1");
        removed.spec.reset = None;
        assert_eq!(of(&removed, Some(&failed), Some(&failed)), None);
        removed.spec.suspend = true;
        assert_eq!(of(&removed, None, None), Some(Hold::Suspended));
    }

    #[test]
    fn resetting_is_true_while_a_reset_runs_and_names_its_phase() {
        let a = asking("r1");
        let v = verdicts(&a, Some(&at("r1", ResetPhase::DeletingTopics)));
        let resetting = v.iter().find(|v| v.type_ == condition::RESETTING).unwrap();
        assert!(resetting.status);
        assert_eq!(resetting.reason, "DeletingTopics");
        let v = verdicts(&a, Some(&at("r1", ResetPhase::Refused)));
        let resetting = v.iter().find(|v| v.type_ == condition::RESETTING).unwrap();
        assert_eq!(
            (resetting.status, resetting.reason.as_str()),
            (false, "ResetRefused")
        );
        let suspended = v.iter().find(|v| v.type_ == condition::SUSPENDED).unwrap();
        assert!(!suspended.status);
    }
}
