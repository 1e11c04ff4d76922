//! One task pair per client connection: the reader decodes frames and dispatches them in
//! arrival order; the writer sends the replies in that same order, awaiting deferred ones
//! (acks=all fsyncs, long-poll fetches) without holding up the reading of later requests.

use futures_util::StreamExt;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::broker::Broker;
use crate::handlers::{self, api_versions, Reply};
use crate::protocol::{decode_request, encode_response, FrameError};

/// Replies a connection may have outstanding before it stops reading (back-pressure on
/// clients that pipeline deeply).
const MAX_IN_FLIGHT: usize = 64;

/// A reply in its place in the response order.
struct Outgoing {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    reply: Reply,
}

/// Serves one client until it disconnects, sends something we close on, or shutdown.
pub async fn serve(socket: TcpStream, broker: Broker, mut shutdown: watch::Receiver<bool>) {
    let peer = socket.peer_addr().ok();
    let _ = socket.set_nodelay(true);
    let (read_half, write_half) = socket.into_split();
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(broker.config.socket_request_max_bytes)
        .new_codec();
    let mut frames = FramedRead::new(read_half, codec);
    let (tx, rx) = mpsc::channel::<Outgoing>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_loop(write_half, rx));
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            _ = shutdown.changed() => break,
        };
        let bytes = match frame {
            None => break,
            Some(Ok(bytes)) => bytes.freeze(),
            Some(Err(e)) => {
                // An oversized frame, or a half frame at EOF: close this connection only.
                tracing::debug!(?peer, error = %e, "closing connection on framing error");
                break;
            }
        };
        let out = match decode_request(bytes) {
            Ok(mut request) => {
                request.peer = peer;
                let api_key = request.api_key;
                let version = request.header.request_api_version;
                let correlation_id = request.header.correlation_id;
                let reply = handlers::dispatch(&broker, request).await;
                Outgoing {
                    api_key,
                    version,
                    correlation_id,
                    reply,
                }
            }
            Err(FrameError::ApiVersionsFallback {
                correlation_id,
                version,
            }) => {
                tracing::debug!(
                    ?peer,
                    version,
                    "ApiVersions at an unknown version, answering v0"
                );
                Outgoing {
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    reply: Reply::now(ResponseKind::ApiVersions(
                        api_versions::unsupported_version(),
                    )),
                }
            }
            Err(e) => {
                tracing::info!(?peer, error = %e, "closing connection");
                break;
            }
        };
        let close = matches!(out.reply, Reply::Close);
        if tx.send(out).await.is_err() || close {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Writes replies in request order; ends when the reader is done or a write fails.
async fn write_loop(mut socket: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some(out) = rx.recv().await {
        let body = match out.reply {
            Reply::Now(body) => *body,
            Reply::Later(fut) => fut.await,
            Reply::Nothing => continue,
            Reply::Close => break,
        };
        let frame = match encode_response(out.api_key, out.version, out.correlation_id, &body) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode response; closing connection");
                break;
            }
        };
        if socket.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = socket.shutdown().await;
}
