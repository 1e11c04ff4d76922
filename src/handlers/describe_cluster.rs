//! DescribeCluster (API 60): this broker as the whole cluster and its controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::context::{RequestContext, Resource, AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_OPERATIONS};

/// Kafka's endpoint type for brokers (2 is controllers, which a single node does not expose).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// Answers DescribeCluster with the endpoint of the listener the request came in on.
pub fn handle(ctx: &RequestContext<'_>, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let broker = ctx.broker;
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            ctx.authorized_operations(Resource::Cluster, CLUSTER_OPERATIONS)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        });
    if req.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return resp
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Only brokers are exposed by this node",
            )));
    }
    resp.brokers = vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_host(StrBytes::from_string(ctx.listener.advertised_host.clone()))
        .with_port(ctx.listener.advertised_port)];
    resp
}
