//! Group administration: ListGroups (API 16), DescribeGroups (15), DeleteGroups (42).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::error_codes::group_code;
use super::metadata::AUTHORIZED_OPERATIONS_OMITTED;
use super::Reply;
use crate::broker::Broker;
use crate::group::Waiter;

/// Every operation Kafka supports on a group (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS), as the bit set returned without an authorizer.
pub const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

fn str_bytes(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

/// Handles a ListGroups: every group, filtered by state (v4+) and type (v5+; all groups
/// here are "classic").
pub fn list_groups(broker: &Broker, req: &ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let groups = broker
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if version >= 4 {
                listed.group_state = StrBytes::from_static_str(g.state.name());
            }
            if version >= 5 {
                listed.group_type = StrBytes::from_static_str("classic");
            }
            listed
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// Handles a DescribeGroups; an unknown group is described as Dead without error, as Kafka
/// does. Member metadata and the protocol are only shown for Stable groups.
pub fn describe_groups(
    broker: &Broker,
    req: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .iter()
        .map(|id| {
            let d = broker.groups.describe_group(id);
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(if version >= 4 {
                            m.group_instance_id.map(str_bytes)
                        } else {
                            None
                        })
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            DescribedGroup::default()
                .with_group_id(id.clone())
                .with_group_state(StrBytes::from_static_str(d.state.name()))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol_data))
                .with_members(members)
                .with_authorized_operations(if version >= 3 && req.include_authorized_operations {
                    GROUP_OPERATIONS
                } else {
                    AUTHORIZED_OPERATIONS_OMITTED
                })
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Handles a DeleteGroups: each distinct group once; answered once the deletions are durable.
pub fn delete_groups(broker: &Broker, req: &DeleteGroupsRequest) -> Reply {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let respond = |results: Vec<(String, Option<crate::group::GroupError>)>| {
        ResponseKind::DeleteGroups(
            DeleteGroupsResponse::default().with_results(
                results
                    .into_iter()
                    .map(|(id, error)| {
                        DeletableGroupResult::default()
                            .with_group_id(GroupId(str_bytes(id)))
                            .with_error_code(group_code(error.as_ref()))
                    })
                    .collect(),
            ),
        )
    };
    match broker.groups.delete_groups(&ids) {
        Waiter::Ready(results) => Reply::now(respond(results)),
        Waiter::Wait(rx) => Reply::Later(Box::pin(async move {
            let results = rx.await.unwrap_or_else(|_| {
                ids.iter()
                    .map(|id| (id.clone(), Some(crate::group::GroupError::NotCoordinator)))
                    .collect()
            });
            respond(results)
        })),
    }
}
