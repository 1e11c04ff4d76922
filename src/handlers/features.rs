//! UpdateFeatures (API 57, v0-2): finalized feature levels changed cluster-wide (Kafka's
//! `ControllerApis.handleUpdateFeatures` and `FeatureControlManager`), through `features`.
//!
//! ALTER on the cluster, else a top-level CLUSTER_AUTHORIZATION_FAILED. The updates apply all
//! or nothing: the first invalid one fails the request with a top-level
//! INVALID_UPDATE_VERSION and no per-feature results. On success v0-1 list every update with
//! code 0 and message "NONE" (Kafka's text); v2 has no results. v0's `allow_downgrade` is read
//! as Kafka reads it: not at all (every v0 update is an upgrade); v1 carries `upgrade_type`.
//! `validate_only` (v1+) checks and changes nothing.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{ResponseKind, UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::features::UpgradeType;

/// Answers UpdateFeatures.
pub fn update_features(ctx: &RequestContext<'_>, req: UpdateFeaturesRequest) -> Reply {
    if !ctx.authorize(AclOperation::Alter, Resource::Cluster) {
        let code = error_codes::denied(ResourceType::Cluster);
        return Reply::now(ResponseKind::UpdateFeatures(
            UpdateFeaturesResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Request UpdateFeatures is not authorized.",
                ))),
        ));
    }
    let version = ctx.version;
    let updates: Vec<(String, i16, Option<UpgradeType>)> = req
        .feature_updates
        .iter()
        .map(|u| {
            let kind = if version == 0 {
                Some(UpgradeType::Upgrade)
            } else {
                UpgradeType::from_code(u.upgrade_type)
            };
            (u.feature.to_string(), u.max_version_level, kind)
        })
        .collect();
    let names: Vec<StrBytes> = req
        .feature_updates
        .iter()
        .map(|u| u.feature.clone())
        .collect();
    let broker = ctx.broker.clone();
    let validate_only = req.validate_only;
    Reply::blocking(
        move || {
            let node = broker.config.node_id;
            let resp = match broker.features.update(&updates, validate_only, node) {
                Ok(()) => {
                    if !validate_only && !updates.is_empty() {
                        tracing::info!(?updates, "finalized features updated");
                    }
                    let results = if version <= 1 {
                        names
                            .into_iter()
                            .map(|name| {
                                UpdatableFeatureResult::default()
                                    .with_feature(name)
                                    .with_error_code(0)
                                    .with_error_message(Some(StrBytes::from_static_str("NONE")))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    UpdateFeaturesResponse::default().with_results(results)
                }
                Err(e) => UpdateFeaturesResponse::default()
                    .with_error_code(error_codes::feature_error(&e).code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            };
            ResponseKind::UpdateFeatures(resp)
        },
        || {
            ResponseKind::UpdateFeatures(
                UpdateFeaturesResponse::default()
                    .with_error_code(ResponseError::UnknownServerError.code()),
            )
        },
    )
}
