//! Requests librdkafka does not make, through the cluster's wire connections: streams groups
//! (ListGroups with a type filter, StreamsGroupDescribe) and group configs (DescribeConfigs and
//! IncrementalAlterConfigs on GROUP resources, where the streams protocol keeps settings such
//! as `streams.num.standby.replicas`).

use std::collections::{BTreeMap, BTreeSet};

use super::brokers::code;
use super::cluster::ClusterClients;
use super::pool::ClientPool;
use crate::connection::KafkaConnection;
use crate::error::KafkaError;
use crate::protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use crate::protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use crate::protocol::messages::list_groups_request::ListGroupsRequest;
use crate::protocol::messages::streams_group_describe_request::StreamsGroupDescribeRequest;
use crate::streams_group::{STREAMS_GROUP_TYPE, StreamsGroupSnapshot};

/// Config resource type of groups (KIP-848).
const GROUP_RESOURCE: i8 = 32;
/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;
/// Error codes of a refused config value.
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const POLICY_VIOLATION: i16 = 44;

impl ClusterClients {
    /// The streams groups of the cluster: ListGroups filtered by type, to every broker (each
    /// lists the groups it coordinates).
    pub(crate) async fn streams_group_ids(&self) -> Result<BTreeSet<String>, KafkaError> {
        let nodes = self.brokers.nodes().await?;
        let request = ListGroupsRequest {
            types_filter: vec![STREAMS_GROUP_TYPE.into()],
            ..Default::default()
        };
        let mut out = BTreeSet::new();
        for address in nodes.values() {
            let response = self.brokers.call(address, "list groups", &request).await?;
            if response.error_code != 0 {
                return Err(self
                    .brokers
                    .broker_error("list groups", response.error_code, None));
            }
            out.extend(
                response
                    .groups
                    .into_iter()
                    .filter(|g| g.group_type.eq_ignore_ascii_case(STREAMS_GROUP_TYPE))
                    .map(|g| g.group_id),
            );
        }
        Ok(out)
    }

    /// `group` as a streams group; `None` when no streams group of that id exists.
    pub(crate) async fn streams_group(
        &self,
        group: &str,
    ) -> Result<Option<StreamsGroupSnapshot>, KafkaError> {
        let request = StreamsGroupDescribeRequest {
            group_ids: vec![group.to_string()],
            ..Default::default()
        };
        // A coordinator that moved answers NOT_COORDINATOR: look it up again, once.
        for attempt in 0..2 {
            let address = self.brokers.coordinator(group).await?;
            let response = self
                .brokers
                .call(&address, "describe streams group", &request)
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    self.brokers.forget_coordinator(group);
                    return Err(e);
                }
            };
            let Some(g) = response.groups.iter().find(|g| g.group_id == group) else {
                return Ok(None);
            };
            match g.error_code {
                0 if g.group_state.eq_ignore_ascii_case("dead") => return Ok(None),
                0 => return Ok(Some(StreamsGroupSnapshot::from_described(g))),
                code::GROUP_ID_NOT_FOUND => return Ok(None),
                code::NOT_COORDINATOR
                | code::COORDINATOR_NOT_AVAILABLE
                | code::COORDINATOR_LOAD_IN_PROGRESS
                    if attempt == 0 =>
                {
                    self.brokers.forget_coordinator(group);
                }
                c => {
                    return Err(self.brokers.broker_error(
                        "describe streams group",
                        c,
                        g.error_message.as_deref(),
                    ));
                }
            }
        }
        Err(self.brokers.broker_error(
            "describe streams group",
            code::NOT_COORDINATOR,
            Some("the group's coordinator kept moving"),
        ))
    }

    /// The current values of `keys` among `group`'s configs (defaults included).
    pub(crate) async fn group_configs(
        &self,
        group: &str,
        keys: &[&str],
    ) -> Result<BTreeMap<String, String>, KafkaError> {
        let request = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: GROUP_RESOURCE,
                resource_name: group.to_string(),
                configuration_keys: Some(keys.iter().map(|k| k.to_string()).collect()),
            }],
            ..Default::default()
        };
        let response = self
            .brokers
            .call_any("describe group configs", &request)
            .await?;
        let mut out = BTreeMap::new();
        for r in response.results {
            if r.error_code != 0 {
                return Err(self.brokers.broker_error(
                    "describe group configs",
                    r.error_code,
                    r.error_message.as_deref(),
                ));
            }
            for c in r.configs {
                if let Some(v) = c.value {
                    out.insert(c.name, v);
                }
            }
        }
        Ok(out)
    }

    /// Sets (`Some`) or removes (`None`, back to the broker's default) configs of `group`.
    pub(crate) async fn alter_group_configs(
        &self,
        group: &str,
        configs: &[(String, Option<String>)],
    ) -> Result<(), KafkaError> {
        let request = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: GROUP_RESOURCE,
                resource_name: group.to_string(),
                configs: configs
                    .iter()
                    .map(|(name, value)| AlterableConfig {
                        name: name.clone(),
                        config_operation: if value.is_some() { SET } else { DELETE },
                        value: value.clone(),
                    })
                    .collect(),
            }],
            validate_only: false,
        };
        let response = self
            .brokers
            .call_any("alter group configs", &request)
            .await?;
        for r in response.responses {
            match r.error_code {
                0 => {}
                INVALID_CONFIG | INVALID_REQUEST | POLICY_VIOLATION => {
                    let detail = r.error_message.unwrap_or_default();
                    // The broker names the offending key in its message; fall back to the
                    // first one asked for.
                    let (key, value) = configs
                        .iter()
                        .find(|(k, _)| detail.contains(k.as_str()))
                        .or(configs.first())
                        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                        .unwrap_or_default();
                    return Err(KafkaError::ConfigRejected {
                        bootstrap: self.bootstrap().to_string(),
                        group: group.to_string(),
                        key,
                        value,
                        detail,
                    });
                }
                c => {
                    return Err(self.brokers.broker_error(
                        "alter group configs",
                        c,
                        r.error_message.as_deref(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl ClientPool {
    /// The cluster's streams groups (KIP-1071).
    pub async fn streams_group_ids(
        &self,
        conn: &KafkaConnection,
    ) -> Result<BTreeSet<String>, KafkaError> {
        self.cluster(conn)?.streams_group_ids().await
    }

    /// `group` as a streams group; `None` when it does not exist as one.
    pub async fn streams_group(
        &self,
        conn: &KafkaConnection,
        group: &str,
    ) -> Result<Option<StreamsGroupSnapshot>, KafkaError> {
        self.cluster(conn)?.streams_group(group).await
    }

    /// The current values of `keys` among `group`'s configs.
    pub async fn group_configs(
        &self,
        conn: &KafkaConnection,
        group: &str,
        keys: &[&str],
    ) -> Result<BTreeMap<String, String>, KafkaError> {
        self.cluster(conn)?.group_configs(group, keys).await
    }

    /// Sets (`Some`) or removes (`None`) configs of `group` with IncrementalAlterConfigs; a
    /// value the broker refuses (e.g. above `group.streams.max.standby.replicas`) is
    /// [`KafkaError::ConfigRejected`], a missing ALTER_CONFIGS ACL on the group
    /// [`KafkaError::NotAuthorized`].
    pub async fn alter_group_configs(
        &self,
        conn: &KafkaConnection,
        group: &str,
        configs: &[(String, Option<String>)],
    ) -> Result<(), KafkaError> {
        self.cluster(conn)?
            .alter_group_configs(group, configs)
            .await
    }
}
