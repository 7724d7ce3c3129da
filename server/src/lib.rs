//! The streamlib render server (`streamlib serve`): a headless render server driven over HTTP/JSON. The render loop runs on
//! its own thread at the scene's fps from the moment a scene is set; the API (tokio + axum)
//! validates requests and hands them over; SIGINT/SIGTERM finish every output before exiting.

mod api;
mod conn;
mod openapi;
mod render;
mod ui;
mod whep;

use anyhow::{bail, Context, Result};
use render::{MediaRoot, RenderThread, Status};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use streamlib::Registry;

/// How to run the server (the `streamlib serve` flags).
#[derive(Debug)]
pub struct ServerConfig {
    /// Address to listen on. Anything but loopback needs a token.
    pub listen: SocketAddr,
    /// Bearer token every request except /health must carry.
    pub token: Option<String>,
    /// Directory that scene file paths are confined to; served under /media.
    pub media_root: PathBuf,
    /// A scene to start with (else the server waits for PUT /scene).
    pub scene: Option<PathBuf>,
    /// Seconds a client has to send a request's headers.
    pub header_timeout: f64,
    /// Connections served at once; by default what the open-files limit leaves room for.
    pub max_connections: Option<usize>,
    /// The clock output frames are paced on (a PTP follower); the system's when `None`.
    pub clock: Option<std::sync::Arc<dyn streamlib::timing::Clock>>,
    /// The kinds scenes may use (the built-in ones, plus any the program adds).
    pub registry: Registry,
}

/// Runs the server until SIGINT/SIGTERM, then finishes every output.
pub fn run(args: ServerConfig) -> Result<()> {
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        bail!("refusing to listen on {} without --token: anyone who can reach it could drive the server", args.listen);
    }
    if args.token.as_deref().is_some_and(|t| t.len() < 8) {
        bail!("--token must be at least 8 characters");
    }
    let media_root =
        std::fs::canonicalize(&args.media_root).with_context(|| format!("media root {}", args.media_root.display()))?;
    let (commands_tx, commands_rx) = crossbeam_channel::bounded(1024);
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(256);
    let status = Arc::new(Mutex::new(Status::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // WHEP outputs and WHIP inputs answer offers that come over this server's HTTP API: the kinds
    // exist here only.
    let webrtc = streamlib::media::WebRtcEndpoints::default();
    let mut registry = args.registry;
    registry.register_sink("whep", streamlib::media::WhepOutputKind::new(webrtc.clone()));
    registry.register_input("whip", streamlib::media::WhipInputKind::new(webrtc.clone()));
    let renderer = RenderThread {
        registry,
        media_root: MediaRoot(media_root.clone()),
        commands: commands_rx,
        status: status.clone(),
        events: events_tx,
        stop: stop.clone(),
        clock: args.clock.clone().unwrap_or_else(|| std::sync::Arc::new(streamlib::timing::SystemClock::default())),
    };
    let render_thread = std::thread::Builder::new().name("streamlib render".into()).spawn(move || renderer.run())?;
    let state = api::AppState {
        commands: commands_tx,
        status,
        events: Arc::new(Mutex::new(events_rx)),
        token: args.token.clone(),
        media_root: MediaRoot(media_root),
        webrtc,
    };
    let initial = match &args.scene {
        Some(path) => Some(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?,
        ),
        None => None,
    };
    if !(args.header_timeout.is_finite() && args.header_timeout > 0.0 && args.header_timeout <= 3600.0) {
        bail!("--header-timeout must be in (0, 3600] seconds");
    }
    let limits = conn::Limits {
        max_connections: args.max_connections.unwrap_or_else(conn::default_max_connections).max(1),
        header_timeout: std::time::Duration::from_secs_f64(args.header_timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stop_flag = stop.clone();
    let result = runtime.block_on(async move {
        let stop = stop_flag;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // Tests and scripts read the real port from this line (with --listen 127.0.0.1:0).
        say(&format!("listening on http://{}", listener.local_addr()?));
        if let Some(scene) = initial {
            let (reply, rx) = tokio::sync::oneshot::channel();
            state
                .commands
                .send(render::Command::Update { update: render::Update::SetScene(scene), at_pts_ns: None, reply })
                .ok();
            match rx.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!(
                    "the starting scene was rejected: {}{}",
                    e.path.map(|p| format!("{p}: ")).unwrap_or_default(),
                    e.message
                ),
                Err(_) => bail!("the renderer stopped"),
            }
        }
        let app = api::router(state);
        let stopping = stop.clone();
        conn::serve(listener, app, limits, async move {
            shutdown_signal().await;
            say("shutting down: finishing outputs");
            stopping.store(true, Ordering::Relaxed);
        })
        .await;
        Ok(())
    });
    stop.store(true, Ordering::Relaxed);
    if render_thread.join().is_err() {
        bail!("the render thread panicked");
    }
    result?;
    say("stopped");
    Ok(())
}

/// A status line on stdout. A supervisor may have closed the pipe: that must not kill the server
/// (`println!` would panic).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
