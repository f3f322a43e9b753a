//! The group configs the operator sets on an app's streams group (pure; the Kafka step applies
//! them). Under the streams rebalance protocol (KIP-1071) the group coordinator assigns the
//! tasks and owns the standby count, as the group config `streams.num.standby.replicas`; the
//! client's `num.standby.replicas` is ignored. So for an app with `spec.kafka.groupProtocol:
//! Streams` the Kafka step sets that config to `spec.standbyReplicas` with
//! IncrementalAlterConfigs whenever it differs from what it last applied (once more after an
//! operator restart: setting it is idempotent).
//!
//! A value the broker refuses (above its `group.streams.max.standby.replicas`) or a principal
//! without the ALTER_CONFIGS ACL on the group makes the app Degraded, with the key, the value
//! and the broker's answer, and a Warning Event; it is tried again at every Kafka check and
//! clears once the config is set. Any other failure is retried at the next check and changes
//! no condition: `KafkaReachable` says what there is to say about the brokers.

use kstreams_kafka::KafkaError;

use crate::crd::{StreamApp, condition};

/// The group config holding a streams group's standby count.
pub const STANDBY_REPLICAS: &str = "streams.num.standby.replicas";
/// The broker setting capping [`STANDBY_REPLICAS`].
pub const MAX_STANDBY_REPLICAS: &str = "group.streams.max.standby.replicas";
/// The cap's default in Kafka.
pub const DEFAULT_MAX_STANDBY_REPLICAS: i32 = 2;

/// Degraded reason: the broker refused a value.
pub const REJECTED: &str = "GroupConfigRejected";
/// Degraded reason: the operator's principal may not alter the group's configs.
pub const NOT_AUTHORIZED: &str = "GroupConfigNotAuthorized";

/// Whether `reason` is one of the Degraded reasons of this module.
pub fn is_reason(reason: &str) -> bool {
    reason == REJECTED || reason == NOT_AUTHORIZED
}

/// The standby count to set on the app's group: `spec.standbyReplicas` for an app on the
/// streams protocol, `None` for a classic one (whose client setting counts) and while the
/// app is paused (the operator changes nothing for it then).
pub fn wanted(app: &StreamApp) -> Option<i32> {
    (app.uses_streams_protocol() && !app.spec.paused).then_some(app.spec.standby_replicas)
}

/// A change to send with `ClientPool::alter_group_configs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// The app's group (its `application.id`).
    pub group: String,
    /// The standby count it sets.
    pub standbys: i32,
}

impl Apply {
    /// The configs, as `alter_group_configs` takes them.
    pub fn configs(&self) -> Vec<(String, Option<String>)> {
        vec![(
            STANDBY_REPLICAS.to_string(),
            Some(self.standbys.to_string()),
        )]
    }
}

/// Why the broker did not take a group config the operator set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The broker refused the value.
    Rejected,
    /// The principal lacks ALTER_CONFIGS on the group.
    NotAuthorized,
}

/// A group config the broker did not take, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub kind: RefusalKind,
    /// The group.
    pub group: String,
    /// The config key.
    pub key: String,
    /// The value refused.
    pub value: String,
    /// The broker's answer.
    pub detail: String,
}

impl Refusal {
    /// The refusal `error` is, for `apply`; `None` for a failure that is not the broker's
    /// answer to the config (unreachable, timed out, ...), which is simply retried.
    pub fn of(error: &KafkaError, apply: &Apply) -> Option<Self> {
        let (kind, key, value, detail) = match error {
            KafkaError::ConfigRejected {
                key, value, detail, ..
            } => (RefusalKind::Rejected, key.clone(), value.clone(), detail),
            KafkaError::NotAuthorized { detail, .. } => (
                RefusalKind::NotAuthorized,
                STANDBY_REPLICAS.to_string(),
                apply.standbys.to_string(),
                detail,
            ),
            _ => return None,
        };
        Some(Self {
            kind,
            group: apply.group.clone(),
            key,
            value,
            detail: detail.clone(),
        })
    }

    /// The Degraded reason.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            RefusalKind::Rejected => REJECTED,
            RefusalKind::NotAuthorized => NOT_AUTHORIZED,
        }
    }

    /// What happened and what to do.
    pub fn message(&self) -> String {
        let Self {
            group,
            key,
            value,
            detail,
            ..
        } = self;
        let standby = key == STANDBY_REPLICAS;
        let field = if standby {
            " (spec.standbyReplicas)"
        } else {
            ""
        };
        let detail = if detail.is_empty() {
            "no detail given"
        } else {
            detail.as_str()
        };
        let todo = match self.kind {
            RefusalKind::Rejected if standby => format!(
                "the broker allows at most {MAX_STANDBY_REPLICAS} standbys \
                 ({DEFAULT_MAX_STANDBY_REPLICAS} unless it sets another cap): lower \
                 spec.standbyReplicas or raise {MAX_STANDBY_REPLICAS} on the brokers"
            ),
            RefusalKind::Rejected => "change the value".to_string(),
            RefusalKind::NotAuthorized => format!(
                "the operator's Kafka principal needs the ALTER_CONFIGS ACL on group {group} \
                 (see docs/operations.md)"
            ),
        };
        let verb = match self.kind {
            RefusalKind::Rejected => "refused",
            RefusalKind::NotAuthorized => "did not authorize",
        };
        let mut message = format!(
            "Kafka {verb} group config {key}={value}{field} of streams group {group}: {detail}; \
             {todo}"
        );
        if standby {
            message.push_str(
                "; until it is set the group keeps the standby count it has (the broker's \
                 group.streams.num.standby.replicas unless set before)",
            );
        }
        message
    }

    /// Whether the refusal is news to the app's status: its Degraded condition does not tell
    /// it yet, so a Warning Event is due. Read from the status, an operator restart does not
    /// repeat it.
    pub fn is_news(&self, app: &StreamApp) -> bool {
        let message = self.message();
        !app.status.iter().flat_map(|s| &s.conditions).any(|c| {
            c.type_ == condition::DEGRADED && c.status == "True" && c.message.contains(&message)
        })
    }
}

/// What the Kafka step remembers of an app's group configs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The standby count last set on the group; `None` before the first success.
    pub standbys: Option<i32>,
    /// The broker's refusal of the last attempt, until an attempt succeeds.
    pub refusal: Option<Refusal>,
}

impl Applied {
    /// The change to send for `app`, if its group lacks the wanted standby count.
    pub fn due(&self, app: &StreamApp) -> Option<Apply> {
        let standbys = wanted(app)?;
        (self.standbys != Some(standbys)).then(|| Apply {
            group: app.application_id(),
            standbys,
        })
    }

    /// Takes in the result of sending `apply` (`None`: nothing was sent) for `app`.
    pub fn took_in(&mut self, app: &StreamApp, sent: Option<(&Apply, &Result<(), KafkaError>)>) {
        if !app.uses_streams_protocol() {
            // Back on the classic protocol (or never off it): nothing to keep; a return to
            // the streams protocol sets the config afresh.
            *self = Self::default();
            return;
        }
        let Some((apply, result)) = sent else {
            return;
        };
        match result {
            Ok(()) => {
                self.standbys = Some(apply.standbys);
                self.refusal = None;
            }
            Err(e) => match Refusal::of(e, apply) {
                Some(refusal) => self.refusal = Some(refusal),
                // Not the broker's answer to this value: a refusal of another value (an
                // earlier spec) no longer stands; one of this value stands until answered.
                None => {
                    let value = apply.standbys.to_string();
                    self.refusal.take_if(|r| r.value != value);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::GroupProtocol;
    use crate::reconcile::fixtures::APP;
    use crate::resources::testing::app;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use std::time::Duration;

    fn streams_app(standbys: i32) -> StreamApp {
        let mut app = app(APP);
        app.spec.kafka.group_protocol = GroupProtocol::Streams;
        app.spec.standby_replicas = standbys;
        app
    }

    fn rejected(value: &str) -> KafkaError {
        KafkaError::ConfigRejected {
            bootstrap: "k:9092".into(),
            group: "wc".into(),
            key: STANDBY_REPLICAS.into(),
            value: value.into(),
            detail: "streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas".into(),
        }
    }

    fn denied() -> KafkaError {
        KafkaError::NotAuthorized {
            bootstrap: "k:9092".into(),
            operation: "alter group configs",
            detail: "Cluster authorization failed.".into(),
        }
    }

    fn timeout() -> KafkaError {
        KafkaError::Timeout {
            bootstrap: "k:9092".into(),
            operation: "alter group configs",
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn only_a_streams_app_has_its_standbys_set_and_only_when_they_changed() {
        let mut applied = Applied::default();
        let classic = app(APP);
        assert_eq!(applied.due(&classic), None);
        let app = streams_app(1);
        // Never set (or the operator restarted): set it.
        let apply = applied.due(&app).expect("due");
        assert_eq!(apply.group, "wc");
        assert_eq!(
            apply.configs(),
            [(STANDBY_REPLICAS.to_string(), Some("1".to_string()))]
        );
        applied.took_in(&app, Some((&apply, &Ok(()))));
        assert_eq!(applied.due(&app), None);
        // A new spec.standbyReplicas: set again.
        let more = streams_app(2);
        assert_eq!(applied.due(&more).map(|a| a.standbys), Some(2));
        // Paused: left as it is.
        let mut paused = streams_app(2);
        paused.spec.paused = true;
        assert_eq!(applied.due(&paused), None);
        // Back on the classic protocol: forgotten, so a return sets it afresh.
        applied.took_in(&classic, None);
        assert_eq!(applied, Applied::default());
        assert!(applied.due(&app).is_some());
    }

    #[test]
    fn a_refusal_stands_until_the_value_is_taken_and_other_failures_retry_quietly() {
        let mut applied = Applied::default();
        let app = streams_app(3);
        let apply = applied.due(&app).unwrap();
        applied.took_in(&app, Some((&apply, &Err(rejected("3")))));
        let refusal = applied.refusal.clone().expect("refused");
        assert_eq!(refusal.reason(), REJECTED);
        // Tried again at the next check; a timeout then leaves the refusal as it was.
        let again = applied.due(&app).expect("still due");
        applied.took_in(&app, Some((&again, &Err(timeout()))));
        assert_eq!(applied.refusal.as_ref(), Some(&refusal));
        // A timeout for another value: the refusal of 3 no longer stands.
        let two = streams_app(2);
        let apply = applied.due(&two).unwrap();
        applied.took_in(&two, Some((&apply, &Err(timeout()))));
        assert_eq!(applied.refusal, None);
        assert_eq!(applied.standbys, None);
        // Denied, then granted.
        applied.took_in(&two, Some((&apply, &Err(denied()))));
        assert_eq!(
            applied.refusal.as_ref().map(Refusal::reason),
            Some(NOT_AUTHORIZED)
        );
        applied.took_in(&two, Some((&apply, &Ok(()))));
        assert_eq!(applied.refusal, None);
        assert_eq!(applied.standbys, Some(2));
    }

    #[test]
    fn the_messages_name_the_key_the_value_the_answer_and_what_to_do() {
        let app = streams_app(3);
        let apply = applied_apply(&app);
        let cap = Refusal::of(&rejected("3"), &apply).unwrap();
        let msg = cap.message();
        assert!(
            msg.starts_with(
                "Kafka refused group config streams.num.standby.replicas=3 \
                 (spec.standbyReplicas) of streams group wc: streams.num.standby.replicas \
                 must be less than"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("at most group.streams.max.standby.replicas standbys (2 unless"),
            "{msg}"
        );
        assert!(msg.contains("lower spec.standbyReplicas"), "{msg}");
        assert_eq!(cap.reason(), "GroupConfigRejected");

        let acl = Refusal::of(&denied(), &apply).unwrap();
        let msg = acl.message();
        assert!(
            msg.starts_with(
                "Kafka did not authorize group config streams.num.standby.replicas=3 \
                 (spec.standbyReplicas) of streams group wc: Cluster authorization failed.; \
                 the operator's Kafka principal needs the ALTER_CONFIGS ACL on group wc"
            ),
            "{msg}"
        );
        assert_eq!(acl.reason(), "GroupConfigNotAuthorized");
        assert!(Refusal::of(&timeout(), &apply).is_none());
        assert!(is_reason(REJECTED) && is_reason(NOT_AUTHORIZED) && !is_reason("ApplyFailed"));
    }

    fn applied_apply(app: &StreamApp) -> Apply {
        Applied::default().due(app).unwrap()
    }

    #[test]
    fn a_refusal_is_news_until_the_status_tells_it() {
        let mut app = streams_app(3);
        let refusal = Refusal::of(&rejected("3"), &applied_apply(&app)).unwrap();
        assert!(refusal.is_news(&app));
        let degraded = |message: String| Condition {
            type_: condition::DEGRADED.into(),
            status: "True".into(),
            reason: "InputTopicMissing".into(),
            message,
            observed_generation: None,
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        };
        app.status = Some(crate::crd::StreamAppStatus {
            conditions: vec![degraded(format!(
                "input topic words does not exist; {}",
                refusal.message()
            ))],
            ..Default::default()
        });
        assert!(!refusal.is_news(&app));
        let denied = Refusal::of(&denied(), &applied_apply(&app)).unwrap();
        assert!(denied.is_news(&app));
    }
}
