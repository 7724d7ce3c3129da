//! The inference worker: one thread per ML layer, at most one request in flight. The render
//! thread offers a frame's tensor only while the worker is idle (MediaPipe's flow limiter:
//! frames that come while it is busy are skipped and counted, so the newest frame always wins
//! and nothing queues); results come back stamped with the pts of the frame they are from.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A result and the frame it came from.
#[derive(Clone, Debug)]
pub struct Stamped<T> {
    /// Presentation time of the frame the tensor was made from.
    pub pts_ns: u64,
    /// Output frame index of that frame.
    pub frame: u64,
    /// What the model said.
    pub value: T,
}

/// What a worker counts.
#[derive(Debug, Default)]
pub struct InferenceStats {
    /// Requests run.
    pub runs: AtomicU64,
    /// Frames skipped because the worker was busy.
    pub skipped: AtomicU64,
    /// Requests that failed.
    pub failures: AtomicU64,
    /// The last request's time from tensor to result (readback wait + inference), µs.
    pub last_us: AtomicU64,
    /// Sum of those times, µs, for averages.
    pub total_us: AtomicU64,
}

type Job<I> = (u64, u64, I);

/// A thread running `work` on one request at a time. Dropping it stops the thread and waits
/// (up to 2 s) for a run in progress to end: a process exiting while ONNX Runtime runs a
/// session on another thread fails inside ONNX Runtime.
pub struct Worker<I, T> {
    jobs: Option<crossbeam_channel::Sender<Job<I>>>,
    stopping: Arc<AtomicBool>,
    ended: crossbeam_channel::Receiver<()>,
    busy: Arc<AtomicBool>,
    latest: Arc<Mutex<Option<Stamped<T>>>>,
    error: Arc<Mutex<Option<String>>>,
    stats: Arc<InferenceStats>,
}

impl<I: Send + 'static, T: Send + 'static> Worker<I, T> {
    /// Starts the thread; `work` turns a request into a result or an error message, and may
    /// give up early when the flag it is given says the worker is stopping.
    pub fn start(
        name: &str,
        mut work: impl FnMut(I, &AtomicBool) -> Result<T, String> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job<I>>(1);
        let (ended_tx, ended) = crossbeam_channel::bounded::<()>(1);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let busy = Arc::new(AtomicBool::new(false));
        let latest = Arc::new(Mutex::new(None));
        let error = Arc::new(Mutex::new(None));
        let stats = Arc::new(InferenceStats::default());
        let (b, l, e, s) = (busy.clone(), latest.clone(), error.clone(), stats.clone());
        std::thread::Builder::new().name(format!("streamlib ml {name}")).spawn(move || {
            // Ends when the layer (the sender) goes.
            for (pts_ns, frame, input) in rx {
                let start = Instant::now();
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(input, &stop)))
                    .unwrap_or_else(|_| Err("the model's code panicked".into()));
                let us = start.elapsed().as_micros() as u64;
                s.last_us.store(us, Ordering::Relaxed);
                s.total_us.fetch_add(us, Ordering::Relaxed);
                match outcome {
                    Ok(value) => {
                        s.runs.fetch_add(1, Ordering::Relaxed);
                        *l.lock().unwrap_or_else(|p| p.into_inner()) = Some(Stamped { pts_ns, frame, value });
                        *e.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    }
                    Err(message) => {
                        s.failures.fetch_add(1, Ordering::Relaxed);
                        *e.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
                    }
                }
                b.store(false, Ordering::Release);
            }
            let _ = ended_tx.send(());
        })?;
        Ok(Worker { jobs: Some(jobs), stopping, ended, busy, latest, error, stats })
    }

    /// Whether a request would be taken now.
    pub fn idle(&self) -> bool {
        !self.busy.load(Ordering::Acquire)
    }

    /// Counts a frame skipped while busy.
    pub fn skip(&self) {
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Hands a request over; false (and nothing sent) while one is in flight.
    pub fn offer(&self, pts_ns: u64, frame: u64, input: I) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            self.skip();
            return false;
        }
        if self.jobs.as_ref().is_none_or(|jobs| jobs.try_send((pts_ns, frame, input)).is_err()) {
            self.busy.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// The newest result.
    pub fn latest(&self) -> Option<Stamped<T>>
    where
        T: Clone,
    {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last request's error, until a request succeeds.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<InferenceStats> {
        &self.stats
    }
}

impl<I, T> Drop for Worker<I, T> {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        self.jobs = None;
        let _ = self.ended.recv_timeout(std::time::Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_busy_worker_skips_frames_and_keeps_the_newest_result() {
        let worker = Worker::start("test", |n: u64, _: &AtomicBool| {
            std::thread::sleep(Duration::from_millis(50));
            Ok(n * 10)
        })
        .expect("start");
        assert!(worker.offer(1, 1, 1));
        assert!(!worker.offer(2, 2, 2), "one in flight at most");
        std::thread::sleep(Duration::from_millis(150));
        assert!(worker.idle());
        let r = worker.latest().expect("a result");
        assert_eq!((r.pts_ns, r.frame, r.value), (1, 1, 10));
        assert_eq!(worker.stats().skipped.load(Ordering::Relaxed), 1);
        assert!(worker.offer(3, 3, 3));
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(worker.latest().expect("newer").value, 30);
    }

    #[test]
    fn dropping_a_worker_waits_for_the_run_in_progress() {
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let worker = Worker::start("test", move |_: u64, _: &AtomicBool| {
            std::thread::sleep(Duration::from_millis(100));
            f.store(true, Ordering::Release);
            Ok(())
        })
        .expect("start");
        worker.offer(0, 0, 0);
        std::thread::sleep(Duration::from_millis(10));
        drop(worker);
        assert!(finished.load(Ordering::Acquire), "the run ended before the worker was gone");
    }

    #[test]
    fn a_failure_is_reported_and_the_worker_goes_on() {
        let worker =
            Worker::start("test", |n: u64, _: &AtomicBool| if n == 0 { Err("zero".to_string()) } else { Ok(n) })
                .expect("start");
        worker.offer(0, 0, 0);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(worker.error().as_deref(), Some("zero"));
        worker.offer(1, 1, 5);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(worker.error(), None);
        assert_eq!(worker.latest().expect("result").value, 5);
    }
}
