//! The librdkafka reads the resets make: topics, the cluster's group ids and one group's
//! description. Checks read through the wire connections instead (see `reads`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use rdkafka::consumer::Consumer;

use super::cluster::{ClusterClients, serve};
use crate::error::KafkaError;
use crate::group::{GroupSnapshot, MemberSnapshot};

impl ClusterClients {
    /// All topics and their partition counts. Blocking.
    pub(crate) fn topics(&self) -> Result<BTreeMap<String, i32>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let md = c.fetch_metadata(None, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("metadata", &self.consumer_ctx, start, &e)
        })?;
        // A topic being deleted reports an error and is left out.
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// Ids of the consumer groups that extend `app_id` with a dash (`app` -> `app-x`): other
    /// Kafka Streams apps whose internal topics carry our prefix too. Blocking.
    pub(crate) fn extending_groups(&self, app_id: &str) -> Result<BTreeSet<String>, KafkaError> {
        let prefix = format!("{app_id}-");
        Ok(self
            .group_ids()?
            .into_iter()
            .filter(|g| g.starts_with(&prefix))
            .collect())
    }

    /// Every consumer group id of the cluster: librdkafka asks every broker (ListGroups)
    /// and then describes each group found (DescribeGroups). Blocking.
    fn group_ids(&self) -> Result<BTreeSet<String>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let list = c.fetch_group_list(None, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("list groups", &self.consumer_ctx, start, &e)
        })?;
        Ok(list.groups().iter().map(|g| g.name().to_string()).collect())
    }

    /// The group as DescribeGroups reports it; `None` when no such group exists. librdkafka
    /// asks every broker for its groups (ListGroups) and the coordinator for this one
    /// (DescribeGroups). Blocking.
    pub(crate) fn describe_group(&self, group: &str) -> Result<Option<GroupSnapshot>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let list = c
            .fetch_group_list(Some(group), self.timeout())
            .map_err(|e| {
                serve(c);
                self.fail("describe group", &self.consumer_ctx, start, &e)
            })?;
        let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
            return Ok(None);
        };
        // The coordinator answers "Dead" for a group it does not know.
        if g.state() == "Dead" && g.members().is_empty() {
            return Ok(None);
        }
        Ok(Some(GroupSnapshot {
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| MemberSnapshot {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    client_host: m.client_host().to_string(),
                    metadata: m.metadata().map(<[u8]>::to_vec),
                    assignment: m.assignment().map(<[u8]>::to_vec),
                })
                .collect(),
        }))
    }
}
