//! Partition leadership and placement as a single-node Kafka answers them: ElectLeaders (API
//! 43, v0-2), AlterPartitionReassignments (API 45, v0-1) and ListPartitionReassignments (API 46,
//! v0).
//!
//! This node is every partition's only replica and its leader, which is also its preferred
//! leader, so (as Kafka's controller decides, `ReplicationControlManager`): an election is
//! ELECTION_NOT_NEEDED; a reassignment to the current replicas (`[node id]`) succeeds with
//! nothing to do, to any other broker id (or an empty or duplicated list) is
//! INVALID_REPLICA_ASSIGNMENT, a cancellation is NO_REASSIGNMENT_IN_PROGRESS; no reassignment
//! is ever in progress. ALTER on the cluster for the first two, DESCRIBE for the listing.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, partition_of};

/// Kafka's election types: 0 preferred, 1 unclean.
const ELECTION_TYPES: std::ops::RangeInclusive<i8> = 0..=1;

/// ElectLeaders: ELECTION_NOT_NEEDED for every existing partition (its leader is its only and
/// preferred replica); a null list means every partition, and those are then left out, as the
/// KRaft controller leaves out partitions that need no election (keeping each topic's entry).
pub fn elect_leaders(ctx: &RequestContext<'_>, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let whole = if !ctx.authorize(AclOperation::Alter, Resource::Cluster) {
        Some(error_codes::denied(ResourceType::Cluster))
    } else if ctx.version >= 1 && !ELECTION_TYPES.contains(&req.election_type) {
        Some(ResponseError::InvalidRequest)
    } else {
        None
    };
    let Some(requested) = req.topic_partitions else {
        let results = if whole.is_some() {
            Vec::new()
        } else {
            ctx.broker
                .topics
                .topics()
                .into_iter()
                .map(|t| {
                    ReplicaElectionResult::default().with_topic(TopicName(t.name.clone().into()))
                })
                .collect()
        };
        return ElectLeadersResponse::default()
            .with_error_code(whole.map_or(0, |c| c.code()))
            .with_replica_election_results(results);
    };
    let results = requested
        .into_iter()
        .map(|t| {
            let topic = ctx.broker.topics.get(&t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let (code, message) = match whole {
                        Some(code) => (code, None),
                        None => match partition_of(topic.as_ref(), p) {
                            Err(code) => (
                                code,
                                Some(format!("No such partition as {}-{p}", t.topic.as_str())),
                            ),
                            Ok(_) => (
                                ResponseError::ElectionNotNeeded,
                                Some("Leader election not needed for topic partition".to_string()),
                            ),
                        },
                    };
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code.code())
                        .with_error_message(message.map(StrBytes::from_string))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(whole.map_or(0, |c| c.code()))
        .with_replica_election_results(results)
}

/// AlterPartitionReassignments: the current replicas are the only valid target.
pub fn alter_partition_reassignments(
    ctx: &RequestContext<'_>,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let denied = (!ctx.authorize(AclOperation::Alter, Resource::Cluster))
        .then(|| error_codes::denied(ResourceType::Cluster));
    let node = ctx.broker.config.node_id;
    let responses = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = ctx.broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let (code, message) = match (denied, partition_of(topic.as_ref(), p.partition_index)) {
                        (Some(code), _) => (Some(code), None),
                        (None, Err(code)) => (Some(code), None),
                        (None, Ok(_)) => match p.replicas.as_deref() {
                            None => (
                                Some(ResponseError::NoReassignmentInProgress),
                                Some("No ongoing reassignment for this partition".to_string()),
                            ),
                            Some([only]) if only.0 == node => (None, None),
                            Some(other) => (
                                Some(ResponseError::InvalidReplicaAssignment),
                                Some(format!(
                                    "The manual partition assignment includes broker ids that are not registered or is empty or has duplicates: {:?}",
                                    other.iter().map(|b| b.0).collect::<Vec<_>>()
                                )),
                            ),
                        },
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.map_or(0, |c| c.code()))
                        .with_error_message(message.map(StrBytes::from_string))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(req.allow_replication_factor_change)
        .with_error_code(denied.map_or(0, |c| c.code()))
        .with_responses(responses)
}

/// ListPartitionReassignments: nothing is ever being reassigned.
pub fn list_partition_reassignments(
    ctx: &RequestContext<'_>,
    _req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let code = if ctx.authorize(AclOperation::Describe, Resource::Cluster) {
        0
    } else {
        error_codes::denied(ResourceType::Cluster).code()
    };
    ListPartitionReassignmentsResponse::default().with_error_code(code)
}
