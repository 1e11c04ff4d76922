//! ApiVersions (API 18): the API table, straight from `registry`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::context::RequestContext;
use super::registry::APIS;

/// Answers ApiVersions with every API in the table and its advertised range.
pub fn handle(_ctx: &RequestContext<'_>, _req: ApiVersionsRequest) -> ApiVersionsResponse {
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
    APIS.iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.range.min)
                .with_max_version(api.range.max)
        })
        .collect()
}
