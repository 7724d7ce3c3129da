//! streamlib's own frame protocol for streamlib-to-streamlib hops (`docs/protocol.md`): frames
//! keep their timestamps, colour space and metadata across the network. `wire` is the bytes,
//! `address` the URLs, `tcp` and `udp` the transports, `codec` JPEG/H.264 through GStreamer,
//! `sink` and `source` the `network` output and input kinds.

pub mod address;
#[cfg(feature = "media")]
pub mod codec;
pub mod proxy;
pub mod sink;
pub mod source;
pub mod tcp;
pub mod udp;
pub mod wire;

/// The system clock, ns since the Unix epoch: what `send_ns` and latency are measured in.
fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub use address::{NetAddress, Role, Transport};
pub use sink::{NetCodec, NetOutputStats, NetworkOutputConfig, NetworkOutputKind, NetworkSink};
pub use source::{NetInputStats, NetworkInputConfig, NetworkInputKind, NetworkProducer};
