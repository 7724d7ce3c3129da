//! Serving HTTP connections with the limits a server on a network needs (axum's `serve` has
//! none): a bound on connections at once, a deadline for request headers (slowloris, idle
//! keep-alive sockets), and a graceful stop that does not wait forever for streams like `/events`.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// What a client may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once. More are closed on accept, before anything is read: idle
    /// sockets cannot use up the file descriptors (which would lock out `/health` too).
    pub max_connections: usize,
    /// A request's headers must arrive within this, on a new or a kept-alive connection.
    pub header_timeout: Duration,
}

/// Room for connections under the soft open-files limit, keeping 64 descriptors for the
/// engine (files, GStreamer, the GPU driver); between 16 and 1024.
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    soft.map_or(1024, |n| n.saturating_sub(64)).clamp(16, 1024)
}
/// On shutdown, connections get this long to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` until `stop` completes, then drains the open connections.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, stop: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refused: {} connections already open", limits.max_connections);
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(socket), service).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                }
                // The watch guard must not live across the awaits below (it is not Send).
                () = async { let _ = stopping.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                }
            }
            drop(permit);
        });
    }
    let _ = stopping_tx.send(true);
    // Every connection returns its permit when done (or after the drain timeout).
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), permits.acquire_many(all)).await;
}
