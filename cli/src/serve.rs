//! `streamlib serve`: the flags of the render server (`streamlib-server`), with the program's
//! demo kinds in its registry.

use anyhow::Result;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer token every request except /health must carry.
    #[arg(long, env = "STREAMLIB_TOKEN")]
    token: Option<String>,
    /// Directory that scene file paths (inputs, images, outputs, HLS) are confined to; served
    /// under /media.
    #[arg(long, default_value = ".")]
    media_root: PathBuf,
    /// A scene to start with (else the server waits for PUT /scene).
    #[arg(long)]
    scene: Option<PathBuf>,
    /// Seconds a client has to send a request's headers, on a new or a kept-alive connection.
    #[arg(long, default_value_t = 10.0)]
    header_timeout: f64,
    /// Connections served at once (more are closed on accept); by default what the open-files
    /// limit leaves room for, at most 1024.
    #[arg(long)]
    max_connections: Option<usize>,
    #[command(flatten)]
    pacing: crate::ptp::PacingClockArgs,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let clock = args.pacing.clock()?;
    streamlib_server::run(streamlib_server::ServerConfig {
        listen: args.listen,
        token: args.token,
        media_root: args.media_root,
        scene: args.scene,
        header_timeout: args.header_timeout,
        max_connections: args.max_connections,
        clock,
        registry: streamlib_scenes::registry(),
    })
}
