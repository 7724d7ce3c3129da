//! `streamlib bench serve`: PATCH requests per second against a server rendering 1080p (W1's four
//! layers, an H.264 file output), and what that load costs the output: frame rate, late ticks and
//! sink drops, against the same server idle for the same time.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn http(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no HTTP status")?;
    Ok((status, raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()))
}

/// (frames, missed ticks, dropped) from /metrics.
fn counters(addr: &str) -> Result<(f64, f64, f64)> {
    let (_, text) = http(addr, "GET", "/metrics", "")?;
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum()
    };
    Ok((
        sum("streamlib_frames_rendered_total"),
        sum("streamlib_missed_ticks_total"),
        sum("streamlib_sink_dropped_total"),
    ))
}

/// This program's `serve` on a free loopback port with a scratch media root: (root, child, address).
pub(crate) fn spawn_server(name: &str) -> Result<(std::path::PathBuf, std::process::Child, String)> {
    let root = std::env::temp_dir().join(format!("streamlib-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--media-root"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let addr = line.trim().strip_prefix("listening on http://").context("server did not start")?.to_string();
    Ok((root, child, addr))
}

pub fn serve(seconds: u64, clients: usize) -> Result<()> {
    let (root, mut child, addr) = spawn_server("serve")?;
    let result = (|| -> Result<()> {
        let mut scene = serde_json::to_value(crate::bench::w1_scene()?)?;
        scene["outputs"] =
            serde_json::json!([{ "id": "rec", "kind": "file", "path": "bench.mp4", "preset": "ultrafast" }]);
        let (status, body) = http(&addr, "PUT", "/scene", &scene.to_string())?;
        if status != 200 {
            bail!("PUT /scene: {status} {body}");
        }
        let layer = scene["layers"][1]["id"].as_str().context("layer id")?.to_string();
        std::thread::sleep(Duration::from_secs(2));
        let adapter = serde_json::from_str::<serde_json::Value>(&http(&addr, "GET", "/health", "")?.1)?["adapter"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let window = Duration::from_secs(seconds);
        // Idle baseline.
        let a = counters(&addr)?;
        std::thread::sleep(window);
        let b = counters(&addr)?;
        // Under load: `clients` threads PATCHing opacity as fast as they are answered.
        let start = Instant::now();
        let latencies: Vec<Vec<f64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let (addr, layer) = (addr.clone(), layer.clone());
                    s.spawn(move || {
                        let mut lat = Vec::new();
                        let mut i = 0u32;
                        while start.elapsed() < window {
                            let body = format!("{{ \"opacity\": {} }}", 0.5 + f64::from((i + c as u32) % 50) / 100.0);
                            let t = Instant::now();
                            if matches!(http(&addr, "PATCH", &format!("/layers/{layer}"), &body), Ok((200, _))) {
                                lat.push(t.elapsed().as_secs_f64() * 1e3);
                            }
                            i += 1;
                        }
                        lat
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let elapsed = start.elapsed().as_secs_f64();
        let c = counters(&addr)?;
        let mut all: Vec<f64> = latencies.into_iter().flatten().collect();
        all.sort_by(f64::total_cmp);
        let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
        let secs = window.as_secs_f64();
        println!("render server: W1 scene (1920x1080, 4 layers) at 30 fps + an H.264 file output; {clients} PATCH clients for {seconds} s");
        println!("adapter: {adapter}");
        println!();
        println!("| | idle | under PATCH load |");
        println!("|---|---|---|");
        println!("| PATCH requests/s | – | {:.0} |", all.len() as f64 / elapsed);
        println!("| PATCH latency p50 / p99 (ms) | – | {:.1} / {:.1} |", pct(0.5), pct(0.99));
        println!("| output fps | {:.1} | {:.1} |", (b.0 - a.0) / secs, (c.0 - b.0) / elapsed);
        println!("| late ticks skipped | {:.0} | {:.0} |", b.1 - a.1, c.1 - b.1);
        println!("| frames dropped by the file output | {:.0} | {:.0} |", b.2 - a.2, c.2 - b.2);
        Ok(())
    })();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    std::fs::remove_dir_all(&root).ok();
    result
}
