//! Group administration: ListGroups (API 16), DescribeGroups (15), DeleteGroups (42).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{
    AclOperation, RequestContext, Resource, AUTHORIZED_OPERATIONS_OMITTED, GROUP_OPERATIONS,
};
use super::error_codes::group_code;
use super::Reply;
use crate::group::{GroupError, Waiter};

fn str_bytes(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

/// Handles a ListGroups: every group, filtered by state (v4+) and type (v5+; all groups
/// here are "classic"); without DESCRIBE on the cluster, only the groups the principal may
/// DESCRIBE.
pub fn list_groups(ctx: &RequestContext<'_>, req: ListGroupsRequest) -> ListGroupsResponse {
    let version = ctx.version;
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let all = ctx.authorize(AclOperation::Describe, Resource::Cluster);
    let groups = ctx
        .broker
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .filter(|g| all || ctx.authorize(AclOperation::Describe, Resource::Group(&g.group_id)))
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
    ctx: &RequestContext<'_>,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let version = ctx.version;
    let groups = req
        .groups
        .iter()
        .map(|id| {
            if !ctx.authorize(AclOperation::Describe, Resource::Group(id)) {
                return DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_error_code(group_code(Some(&GroupError::GroupAuthorizationFailed)))
                    .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            }
            let d = ctx.broker.groups.describe_group(id);
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
                    ctx.authorized_operations(Resource::Group(id), GROUP_OPERATIONS)
                } else {
                    AUTHORIZED_OPERATIONS_OMITTED
                })
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Handles a DeleteGroups: each distinct group once; answered once the deletions are durable.
/// Groups the principal may not DELETE answer GROUP_AUTHORIZATION_FAILED and are kept.
pub fn delete_groups(ctx: &RequestContext<'_>, req: DeleteGroupsRequest) -> Reply {
    let (allowed, denied): (Vec<String>, Vec<String>) = req
        .groups_names
        .iter()
        .map(|g| g.to_string())
        .partition(|g| ctx.authorize(AclOperation::Delete, Resource::Group(g)));
    let ids = allowed;
    let respond = move |mut results: Vec<(String, Option<GroupError>)>| {
        results.extend(
            denied
                .iter()
                .map(|g| (g.clone(), Some(GroupError::GroupAuthorizationFailed))),
        );
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
    match ctx.broker.groups.delete_groups(&ids) {
        Waiter::Ready(results) => Reply::now(respond(results)),
        Waiter::Wait(rx) => Reply::Later(Box::pin(async move {
            let results = rx.await.unwrap_or_else(|_| {
                ids.iter()
                    .map(|id| (id.clone(), Some(GroupError::NotCoordinator)))
                    .collect()
            });
            respond(results)
        })),
    }
}
