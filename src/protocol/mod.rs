//! The wire: framing, header versions, the supported api/version table.

pub mod codec;
pub mod versions;

pub use codec::{decode_request, encode_response, FrameError, Request};
pub use versions::{supported, ApiRange, SUPPORTED};
