//! A UDP proxy that loses and reorders datagrams on purpose, deterministically: for tests and
//! benchmarks of the UDP transport on loopback (this kernel has no netem). Datagrams from the
//! sender go to `to` through the filter; the receiver's answers go back untouched.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Which forwarded datagrams (numbered from 1) to lose.
pub type LossRule = Box<dyn Fn(u64) -> bool + Send>;

/// A running proxy; stops when dropped.
pub struct LossyProxy {
    /// Where senders send.
    pub addr: SocketAddr,
    /// Datagrams lost so far.
    pub dropped: Arc<AtomicU64>,
    /// Datagrams forwarded so far.
    pub forwarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LossyProxy {
    /// Forwards to `to`, losing the datagrams `lose` names and holding every `swap_every`-th back
    /// behind the next (0: no reordering).
    pub fn start(to: SocketAddr, lose: LossRule, swap_every: u64) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(if to.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" })?;
        // Room for a burst while this thread is not scheduled.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let addr = socket.local_addr()?;
        let (dropped, forwarded, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (d, f, s) = (dropped.clone(), forwarded.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("streamlib lossy proxy".into()).spawn(move || {
            let mut buf = vec![0u8; 65536];
            let (mut sender, mut held, mut i) = (None, None::<Vec<u8>>, 0u64);
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                if from == to {
                    if let Some(back) = sender {
                        let _ = socket.send_to(&buf[..n], back);
                    }
                    continue;
                }
                sender = Some(from);
                i += 1;
                if lose(i) {
                    d.fetch_add(1, Ordering::Relaxed);
                } else if swap_every > 0 && i % swap_every == 0 && held.is_none() {
                    held = Some(buf[..n].to_vec());
                } else {
                    let _ = socket.send_to(&buf[..n], to);
                    f.fetch_add(1, Ordering::Relaxed);
                    if let Some(h) = held.take() {
                        let _ = socket.send_to(&h, to);
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })?;
        Ok(LossyProxy { addr, dropped, forwarded, stop, thread: Some(thread) })
    }

    /// `percent` % of datagrams lost, spread by a fixed pseudo-random sequence (the same every run).
    pub fn random_loss(percent: u64) -> LossRule {
        Box::new(move |i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100 < percent)
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
