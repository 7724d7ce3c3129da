//! streamlib's own frame protocol for streamlib-to-streamlib hops (`docs/protocol.md`): frames
//! keep their timestamps, colour space and metadata across the network. `wire` is the bytes,
//! `tcp` the transport, `sink` and `source` the `network` output and input kinds.

pub mod sink;
pub mod source;
pub mod tcp;
pub mod wire;

pub use sink::{NetworkOutputConfig, NetworkOutputKind, NetworkSink};
pub use source::{NetworkInputConfig, NetworkInputKind, NetworkProducer};
