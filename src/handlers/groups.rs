//! Group membership: JoinGroup (API 11), SyncGroup (14), Heartbeat (12), LeaveGroup (13).
//!
//! The handlers validate what Kafka's `GroupCoordinatorService` validates before the state
//! machine (empty group id, session timeout bounds, v5 SyncGroup protocol fields), hand the
//! rest to the coordinator, and encode its outcome for the request's version. A JoinGroup or
//! SyncGroup that has to wait becomes a deferred reply: the connection keeps reading other
//! requests, and the response keeps its place in the response order.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ResponseKind, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource};
use super::error_codes::{group_code, group_error};
use super::Reply;
use crate::group::{
    GroupError, JoinOutcome, JoinRequest, LeaveMember, Protocol, SyncOutcome, SyncRequest, Waiter,
};

fn str_bytes(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

/// The client address as Kafka reports it (`InetAddress.toString()` without a host name).
pub fn client_host(peer: Option<SocketAddr>) -> String {
    peer.map(|p| format!("/{}", p.ip())).unwrap_or_default()
}

/// READ on the group, which every membership API needs (Kafka answers
/// GROUP_AUTHORIZATION_FAILED for the whole request).
fn may_read(ctx: &RequestContext<'_>, group_id: &str) -> bool {
    ctx.authorize(AclOperation::Read, Resource::Group(group_id))
}

/// Handles a JoinGroup.
pub fn join_group(ctx: &RequestContext<'_>, req: JoinGroupRequest) -> Reply {
    let (broker, version) = (ctx.broker, ctx.version);
    let member_id = req.member_id.to_string();
    let config = broker.groups.config();
    if !may_read(ctx, &req.group_id) {
        let outcome = JoinOutcome::error(GroupError::GroupAuthorizationFailed, "");
        return Reply::now(ResponseKind::JoinGroup(join_response(outcome, version)));
    }
    if req.group_id.is_empty() {
        let outcome = JoinOutcome::error(GroupError::InvalidGroupId, member_id);
        return Reply::now(ResponseKind::JoinGroup(join_response(outcome, version)));
    }
    if req.session_timeout_ms < config.min_session_timeout_ms
        || req.session_timeout_ms > config.max_session_timeout_ms
    {
        let error = GroupError::InvalidSessionTimeout {
            got: req.session_timeout_ms,
            min: config.min_session_timeout_ms,
            max: config.max_session_timeout_ms,
        };
        let outcome = JoinOutcome::error(error, member_id);
        return Reply::now(ResponseKind::JoinGroup(join_response(outcome, version)));
    }
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        client_id: ctx.client_id().to_string(),
        client_host: client_host(ctx.peer),
        version,
    };
    match broker.groups.join(&req.group_id, join) {
        Waiter::Ready(outcome) => {
            Reply::now(ResponseKind::JoinGroup(join_response(outcome, version)))
        }
        Waiter::Wait(rx) => Reply::Later(Box::pin(async move {
            // A dropped sender means the group was unloaded (shutdown).
            let outcome = rx
                .await
                .unwrap_or_else(|_| JoinOutcome::error(GroupError::NotCoordinator, member_id));
            ResponseKind::JoinGroup(join_response(outcome, version))
        })),
    }
}

/// Encodes a JoinGroup outcome the way Kafka's `JoinGroupResponse` normalizes it per version:
/// before v7 the protocol name is never null, from v7 an empty one is null; fields a version
/// lacks stay at their defaults so the encoder accepts them.
pub fn join_response(o: JoinOutcome, version: i16) -> JoinGroupResponse {
    let protocol_name = if version < 7 {
        Some(o.protocol_name.unwrap_or_default())
    } else {
        o.protocol_name.filter(|n| !n.is_empty())
    };
    let members = o
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.map(str_bytes)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(group_code(o.error.as_ref()))
        .with_generation_id(o.generation_id)
        .with_protocol_type(if version >= 7 {
            o.protocol_type.map(str_bytes)
        } else {
            None
        })
        .with_protocol_name(protocol_name.map(str_bytes))
        .with_leader(str_bytes(o.leader))
        .with_skip_assignment(version >= 9 && o.skip_assignment)
        .with_member_id(str_bytes(o.member_id))
        .with_members(members)
}

/// Handles a SyncGroup.
pub fn sync_group(ctx: &RequestContext<'_>, req: SyncGroupRequest) -> Reply {
    let (broker, version) = (ctx.broker, ctx.version);
    let now = |o: SyncOutcome| Reply::now(ResponseKind::SyncGroup(sync_response(o, version)));
    if !may_read(ctx, &req.group_id) {
        return now(SyncOutcome::error(GroupError::GroupAuthorizationFailed));
    }
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        // From v5 both fields are mandatory (Kafka checks before anything else).
        return now(SyncOutcome::error(GroupError::InconsistentGroupProtocol));
    }
    if req.group_id.is_empty() {
        return now(SyncOutcome::error(GroupError::InvalidGroupId));
    }
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_id: req.generation_id,
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    match broker.groups.sync(&req.group_id, sync) {
        Waiter::Ready(o) => now(o),
        Waiter::Wait(rx) => Reply::Later(Box::pin(async move {
            let o = rx
                .await
                .unwrap_or_else(|_| SyncOutcome::error(GroupError::NotCoordinator));
            ResponseKind::SyncGroup(sync_response(o, version))
        })),
    }
}

/// Encodes a SyncGroup outcome; protocol type and name exist from v5.
pub fn sync_response(o: SyncOutcome, version: i16) -> SyncGroupResponse {
    let (protocol_type, protocol_name) = if version >= 5 {
        (
            o.protocol_type.map(str_bytes),
            o.protocol_name.map(str_bytes),
        )
    } else {
        (None, None)
    };
    SyncGroupResponse::default()
        .with_error_code(group_code(o.error.as_ref()))
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_assignment(if o.error.is_some() {
            Bytes::new()
        } else {
            o.assignment
        })
}

/// Handles a Heartbeat.
pub fn heartbeat(ctx: &RequestContext<'_>, req: HeartbeatRequest) -> HeartbeatResponse {
    if !may_read(ctx, &req.group_id) {
        return HeartbeatResponse::default()
            .with_error_code(group_code(Some(&GroupError::GroupAuthorizationFailed)));
    }
    let result = if req.group_id.is_empty() {
        Err(GroupError::InvalidGroupId)
    } else {
        ctx.broker.groups.heartbeat(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
    };
    HeartbeatResponse::default().with_error_code(group_code(result.err().as_ref()))
}

/// Handles a LeaveGroup: one member before v3 (errors at the top level), a batch from v3.
pub fn leave_group(ctx: &RequestContext<'_>, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let version = ctx.version;
    if !may_read(ctx, &req.group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(group_error(&GroupError::GroupAuthorizationFailed).code());
    }
    let leaving: Vec<LeaveMember> = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeaveMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeaveMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let result = if req.group_id.is_empty() {
        Err(GroupError::InvalidGroupId)
    } else {
        ctx.broker.groups.leave(&req.group_id, &leaving)
    };
    let results = match result {
        Err(e) => return LeaveGroupResponse::default().with_error_code(group_error(&e).code()),
        Ok(results) => results,
    };
    if version < 3 {
        let code = results.first().map_or(0, |r| group_code(r.error.as_ref()));
        return LeaveGroupResponse::default().with_error_code(code);
    }
    LeaveGroupResponse::default().with_members(
        results
            .into_iter()
            .map(|r| {
                MemberResponse::default()
                    .with_member_id(str_bytes(r.member_id))
                    .with_group_instance_id(r.group_instance_id.map(str_bytes))
                    .with_error_code(group_code(r.error.as_ref()))
            })
            .collect(),
    )
}
