//! The wire: framing, header versions, request decoding and response encoding. Which APIs and
//! versions are served is not decided here but by the one API table, `handlers::registry`,
//! which the decoder consults through [`ApiRange`].

pub mod codec;

pub use codec::{decode_request, encode_response, FrameError, Request};

/// The versions of one API: the range advertised in ApiVersions and the lowest version served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// Lowest version advertised in ApiVersions.
    pub min: i16,
    /// Lowest version served; requests below it close the connection as Kafka 4 does.
    pub served_min: i16,
    /// Highest version advertised and served.
    pub max: i16,
}

impl ApiRange {
    /// Whether a request at `version` is served (not merely advertised).
    pub fn serves(&self, version: i16) -> bool {
        version >= self.served_min && version <= self.max
    }

    /// Whether `version` is advertised.
    pub fn advertises(&self, version: i16) -> bool {
        version >= self.min && version <= self.max
    }
}
