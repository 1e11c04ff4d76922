//! ApiVersions (API 18): the supported table, straight from `protocol::versions`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::protocol::SUPPORTED;

/// Answers ApiVersions with every supported API and its range.
pub fn handle(_req: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = supported_keys();
    resp.finalized_features_epoch = -1;
    resp
}

/// The response to an ApiVersions request at a version we do not know (KIP-511): encoded as
/// v0, with UNSUPPORTED_VERSION and our ranges so the client can retry at one of them.
pub fn unsupported_version() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.error_code = ResponseError::UnsupportedVersion.code();
    resp.api_keys = supported_keys();
    resp
}

fn supported_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect()
}
