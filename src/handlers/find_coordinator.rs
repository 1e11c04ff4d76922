//! FindCoordinator (API 10): this node coordinates every group and transactional id.
//!
//! Before v4 one key per request, answered in the top-level fields (with Kafka's error message,
//! "NONE" on success); from v4 a batch of keys, one answer each. Key type 0 is a group, 1 a
//! transactional id; 2 (share groups, KIP-932) and unknown types are INVALID_REQUEST, as a
//! Kafka broker without a share coordinator answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes;
use crate::group::GroupError;

/// Key types of FindCoordinator.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// Answers a FindCoordinator request with the endpoint of the listener the request came in on.
pub fn handle(ctx: &RequestContext<'_>, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let (broker, version) = (ctx.broker, ctx.version);
    // DESCRIBE on the group or transactional id (Kafka's `handleFindCoordinatorRequest`).
    let authorized = |key: &str| match req.key_type {
        GROUP_KEY => ctx
            .authorize(AclOperation::Describe, Resource::Group(key))
            .then_some(())
            .ok_or(ResourceType::Group),
        TRANSACTION_KEY => ctx
            .authorize(AclOperation::Describe, Resource::TransactionalId(key))
            .then_some(())
            .ok_or(ResourceType::TransactionalId),
        _ => Ok(()),
    };
    let key_type_error = match req.key_type {
        GROUP_KEY | TRANSACTION_KEY => None,
        2 => Some(GroupError::InvalidRequest(
            "share coordinators are not supported".to_string(),
        )),
        other => Some(GroupError::InvalidRequest(format!(
            "unknown coordinator type {other}"
        ))),
    };
    let node_id = BrokerId(broker.config.node_id);
    let host = StrBytes::from_string(ctx.listener.advertised_host.clone());
    let port = ctx.listener.advertised_port;
    if version < 4 {
        let mut resp = FindCoordinatorResponse::default();
        let denied = if key_type_error.is_none() {
            authorized(&req.key).err()
        } else {
            None
        };
        if let Some(resource_type) = denied {
            let code = error_codes::denied(resource_type);
            resp.error_code = code.code();
            resp.node_id = BrokerId(-1);
            resp.port = -1;
            if version >= 1 {
                resp.error_message = Some(StrBytes::from_string(code.to_string()));
            }
            return resp;
        }
        match &key_type_error {
            None => {
                resp.node_id = node_id;
                resp.host = host;
                resp.port = port;
                if version >= 1 {
                    // Kafka sends Errors.NONE.message(), which is "NONE".
                    resp.error_message = Some(StrBytes::from_static_str("NONE"));
                }
            }
            Some(e) => {
                let code = error_codes::group_error(e);
                resp.error_code = code.code();
                resp.node_id = BrokerId(-1);
                resp.host = StrBytes::default();
                resp.port = -1;
                if version >= 1 {
                    resp.error_message = Some(StrBytes::from_string(code.to_string()));
                }
            }
        }
        return resp;
    }
    let coordinators = req
        .coordinator_keys
        .iter()
        .map(|key| {
            let c = Coordinator::default().with_key(key.clone());
            match &key_type_error {
                None => match authorized(key) {
                    Ok(()) => c
                        .with_node_id(node_id)
                        .with_host(host.clone())
                        .with_port(port),
                    Err(resource_type) => c
                        .with_error_code(error_codes::denied(resource_type).code())
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                },
                // An unknown type fails the whole request in Kafka, whose error response
                // repeats the error (with its message) for every key.
                Some(e) if req.key_type != 2 => c
                    .with_error_code(error_codes::group_error(e).code())
                    .with_error_message(Some(StrBytes::from_string(
                        ResponseError::InvalidRequest.to_string(),
                    )))
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
                Some(e) => c
                    .with_error_code(error_codes::group_error(e).code())
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
