//! Reading a StreamApp's conditions as a user does with `kubectl get -o yaml`.

use kstreams_operator::crd::StreamApp;

/// `(status, reason, message)` of the condition `type_`, if the app has it.
pub fn condition(app: &StreamApp, type_: &str) -> Option<(String, String, String)> {
    let c = app
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Whether the condition `type_` has `status` (`"True"`, `"False"`, `"Unknown"`).
pub fn is(app: &StreamApp, type_: &str, status: &str) -> bool {
    condition(app, type_).is_some_and(|(s, _, _)| s == status)
}
