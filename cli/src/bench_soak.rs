//! `streamlib bench soak --minutes N`: a long run of the render server with text, moving inputs
//! and a live HLS output while a client PATCHes every 100 ms. Resident memory, open file
//! descriptors, threads and the HLS directory's size are sampled every `--sample-seconds`: after
//! warm-up they must stay flat (growth under 5 %) and HLS bounded by its window.

use crate::bench_serve::{http, spawn_server};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SCENE: &str = r##"{
  "width": 1280, "height": 720, "fps": 30, "background": "#101018",
  "inputs": {
    "card": { "kind": "test_pattern", "pattern": "test_card" },
    "box": { "kind": "test_pattern", "pattern": "moving_box", "color": "#FF8020" }
  },
  "layers": [
    { "id": "card", "kind": "video", "input": "card" },
    { "id": "box", "kind": "video", "input": "box", "z": 1, "blend": "screen", "opacity": 0.6 },
    { "id": "title", "kind": "text", "z": 2, "text": "soak {timecode} frame {frame}", "size": 40, "rect": [40, 620, 1200, 60] }
  ],
  "outputs": [ { "id": "live", "kind": "hls", "dir": "hls", "mode": "live", "window": 6, "segment_seconds": 2,
    "ladder": [720, 360], "preset": "ultrafast" } ]
}"##;

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Sample {
    seconds: f64,
    rss_mib: f64,
    fds: usize,
    threads: usize,
    hls_kib: f64,
    frames: f64,
}

fn sample(pid: u32, hls: &Path, seconds: f64, addr: &str) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    let hls_bytes: u64 = walk(hls);
    let (_, health) = http(addr, "GET", "/health", "")?;
    let frames = serde_json::from_str::<serde_json::Value>(&health)?["frames"].as_f64().unwrap_or(f64::NAN);
    Ok(Sample {
        seconds,
        rss_mib: field("VmRSS:") / 1024.0,
        fds,
        threads: field("Threads:") as usize,
        hls_kib: hls_bytes as f64 / 1024.0,
        frames,
    })
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

pub fn soak(minutes: f64, sample_seconds: f64, json: Option<&Path>, plot: Option<&Path>) -> Result<()> {
    if !(minutes > 0.0 && sample_seconds > 0.0) {
        bail!("--minutes and --sample-seconds must be positive");
    }
    let (root, mut child, addr) = spawn_server("soak")?;
    let result = (|| -> Result<Vec<Sample>> {
        let (status, body) = http(&addr, "PUT", "/scene", SCENE)?;
        if status != 200 {
            bail!("PUT /scene: {status} {body}");
        }
        let total = Duration::from_secs_f64(minutes * 60.0);
        let every = Duration::from_secs_f64(sample_seconds);
        let start = Instant::now();
        let mut samples = vec![sample(child.id(), &root.join("hls"), 0.0, &addr)?];
        let mut next_sample = every;
        let mut i = 0u64;
        let mut rejected = 0u64;
        println!("| min | RSS MiB | fds | threads | HLS KiB | frames |");
        println!("|---|---|---|---|---|---|");
        while start.elapsed() < total {
            // A client editing the scene every 100 ms: text, opacity, position.
            let patch = match i % 3 {
                0 => format!("{{ \"text\": \"soak {{timecode}} patch {i}\" }}"),
                1 => format!("{{ \"opacity\": {} }}", 0.3 + (i % 7) as f64 / 10.0),
                _ => format!("{{ \"rect\": [{}, 620, 1200, 60] }}", 20 + i % 40),
            };
            let layer = if i % 3 == 1 { "box" } else { "title" };
            if !matches!(http(&addr, "PATCH", &format!("/layers/{layer}"), &patch), Ok((200, _))) {
                rejected += 1;
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(100));
            if start.elapsed() >= next_sample {
                let s = sample(child.id(), &root.join("hls"), start.elapsed().as_secs_f64(), &addr)?;
                println!(
                    "| {:.1} | {:.1} | {} | {} | {:.0} | {:.0} |",
                    s.seconds / 60.0,
                    s.rss_mib,
                    s.fds,
                    s.threads,
                    s.hls_kib,
                    s.frames
                );
                samples.push(s);
                next_sample += every;
            }
        }
        let adapter = serde_json::from_str::<serde_json::Value>(&http(&addr, "GET", "/health", "")?.1)?["adapter"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // Warm-up: the first quarter of the run (pipelines, encoders and HLS fill up).
        let warm = samples.len() / 4;
        let (first, last) = (samples[warm.max(1).min(samples.len() - 1)], samples[samples.len() - 1]);
        let growth = |a: f64, b: f64| (b - a) / a.max(1e-9) * 100.0;
        println!();
        println!("adapter: {adapter}; {i} PATCHes ({rejected} not 200)");
        println!(
            "after warm-up (from {:.1} min): RSS {:+.1} %, fds {:+.1} %, threads {:+.1} %, HLS {:.0} -> {:.0} KiB",
            first.seconds / 60.0,
            growth(first.rss_mib, last.rss_mib),
            growth(first.fds as f64, last.fds as f64),
            growth(first.threads as f64, last.threads as f64),
            first.hls_kib,
            last.hls_kib
        );
        Ok(samples)
    })();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    std::fs::remove_dir_all(&root).ok();
    let samples = result?;
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&samples)?)?;
    }
    if let Some(path) = plot {
        draw(&samples, path)?;
    }
    Ok(())
}

/// Plots the samples of an earlier run (`--json`) into `plot`.
pub fn replot(json: &Path, plot: &Path) -> Result<()> {
    let samples: Vec<Sample> = serde_json::from_str(&std::fs::read_to_string(json)?)?;
    if samples.is_empty() {
        bail!("{}: no samples", json.display());
    }
    draw(&samples, plot)?;
    println!("{} samples -> {}", samples.len(), plot.display());
    Ok(())
}

/// A plotted line: name, colour, one value per sample.
type Line = (&'static str, plotters::style::RGBColor, Vec<f64>);

/// Three panels over minutes: resident memory, descriptors and threads, HLS directory size.
fn draw(samples: &[Sample], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot: {e}");
    crate::plot::register_font().map_err(|e| err(&e))?;
    let root = BitMapBackend::new(path, (960, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let minutes = samples.last().map_or(1.0, |s| s.seconds / 60.0).max(0.1);
    let panels = root.split_evenly((3, 1));
    let series: [(&str, Vec<Line>); 3] = [
        ("resident memory (MiB)", vec![("RSS", RGBColor(220, 60, 40), samples.iter().map(|s| s.rss_mib).collect())]),
        (
            "open descriptors and threads",
            vec![
                ("fds", RGBColor(40, 100, 220), samples.iter().map(|s| s.fds as f64).collect()),
                ("threads", RGBColor(40, 160, 80), samples.iter().map(|s| s.threads as f64).collect()),
            ],
        ),
        ("HLS directory (KiB)", vec![("HLS", RGBColor(150, 80, 180), samples.iter().map(|s| s.hls_kib).collect())]),
    ];
    for (panel, (title, lines)) in panels.iter().zip(series) {
        let max = lines.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(1.0f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..minutes, 0.0..max)
            .map_err(|e| err(&e))?;
        chart.configure_mesh().x_desc("minutes").draw().map_err(|e| err(&e))?;
        for (name, color, values) in lines {
            let points = samples.iter().zip(values).map(|(s, v)| (s.seconds / 60.0, v));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
