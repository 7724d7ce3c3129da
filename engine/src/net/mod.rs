//! streamlib's own frame protocol for streamlib-to-streamlib hops (`docs/protocol.md`): frames
//! keep their timestamps, colour space and metadata across the network. `wire` is the bytes,
//! `tcp` the transport, `sink` and `source` the `network` output and input kinds.

pub mod sink;
pub mod source;
pub mod tcp;
pub mod wire;

/// The system clock, ns since the Unix epoch: what `send_ns` and latency are measured in.
fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub use sink::{NetworkOutputConfig, NetworkOutputKind, NetworkSink};
pub use source::{NetworkInputConfig, NetworkInputKind, NetworkProducer};
