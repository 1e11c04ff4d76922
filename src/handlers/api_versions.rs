//! ApiVersions (API 18): the API table, straight from `registry`, and the features this broker
//! implements (`features`): `transaction.version` 0-2 supported, finalized as UpdateFeatures
//! last left it (Kafka 4 clients use the KIP-890 protocol only when it is finalized at 2).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::context::RequestContext;
use super::registry::APIS;
use crate::features::SUPPORTED;

/// Answers ApiVersions with every API in the table and its advertised range.
pub fn handle(ctx: &RequestContext<'_>, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = supported_keys();
    // Before v4 Kafka leaves out supported features whose minimum is 0.
    if ctx.version >= 4 {
        resp.supported_features = SUPPORTED
            .iter()
            .map(|f| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(f.name))
                    .with_min_version(f.min)
                    .with_max_version(f.max)
            })
            .collect();
    }
    // Kafka lists only features finalized above level 0, with min = max = the level.
    let (epoch, finalized) = ctx.broker.features.finalized();
    resp.finalized_features = finalized
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    // Clients take finalized features only from an epoch newer than what they saw (-1 at
    // first); every UpdateFeatures moves it.
    resp.finalized_features_epoch = epoch;
    resp
}

/// The feature that switches KIP-890 (the transaction protocol version).
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// The response to an ApiVersions request at a version we do not know (KIP-511): encoded as
/// v0, with UNSUPPORTED_VERSION and our ranges so the client can retry at one of them.
pub fn unsupported_version() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.error_code = ResponseError::UnsupportedVersion.code();
    resp.api_keys = supported_keys();
    resp
}

fn supported_keys() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.range.min)
                .with_max_version(api.range.max)
        })
        .collect()
}
