//! The HTTP API (axum): JSON in and out, errors as `{"error", "path"}` with a 4xx status, a
//! bearer token when one is set, bodies capped, and every change handed to the render thread.

use super::render::{ApiError, Applied, Command, MediaRoot, Status, Update};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use crossbeam_channel::{Sender, TrySendError};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

/// Largest request body: a scene document is a few KiB; this leaves room for big vector layers.
pub const BODY_LIMIT: usize = 1 << 20;
/// How long a request waits for the render thread to take its update.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub commands: Sender<Command>,
    pub status: Arc<Mutex<Status>>,
    pub events: Arc<Mutex<broadcast::Receiver<Value>>>,
    pub token: Option<String>,
    pub media_root: MediaRoot,
    /// The WHEP outputs (and WHIP inputs) of the scene, by id.
    pub webrtc: streamlib::media::WebRtcEndpoints,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match self.path {
            Some(path) => serde_json::json!({ "error": self.message, "path": path }),
            None => serde_json::json!({ "error": self.message }),
        };
        (status, Json(body)).into_response()
    }
}

/// Parses a JSON body ourselves so errors name the JSON path (axum's extractor does not).
fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: Value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "?" || path.is_empty() { ".".to_string() } else { path };
        ApiError::at(400, path, format!("invalid JSON: {}", e.inner()))
    })?;
    // One JSON value and nothing after it (`{"opacity":0.5}xyz` is not a body).
    de.end().map_err(|e| ApiError::at(400, ".", format!("invalid JSON: {e}")))?;
    Ok(value)
}

fn object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::at(400, ".", "expected a JSON object")),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct At {
    /// Apply when the output reaches this pts (nanoseconds) instead of at the next frame.
    at_pts_ns: Option<u64>,
}

async fn send_update(state: &AppState, update: Update, at_pts_ns: Option<u64>) -> Result<Json<Applied>, ApiError> {
    let (reply, rx) = oneshot::channel();
    match state.commands.try_send(Command::Update { update, at_pts_ns, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(ApiError::new(503, "too many updates queued; retry")),
        Err(TrySendError::Disconnected(_)) => return Err(ApiError::new(503, "the renderer has stopped")),
    }
    // An update due at a later pts may wait for it; others are applied within a frame.
    let wait = if at_pts_ns.is_some() { Duration::from_secs(3600) } else { APPLY_TIMEOUT };
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(result)) => result.map(Json),
        Ok(Err(_)) => Err(ApiError::new(503, "the renderer has stopped")),
        Err(_) => Err(ApiError::new(
            504,
            "the renderer did not answer in time; the update is still queued and may apply \
             (GET /scene shows the revision): check before retrying",
        )),
    }
}

async fn put_scene(State(s): State<AppState>, Query(at): Query<At>, body: Bytes) -> Result<Json<Applied>, ApiError> {
    let scene = json_body(&body)?;
    send_update(&s, Update::SetScene(scene), at.at_pts_ns).await
}

async fn get_scene(State(s): State<AppState>) -> Result<Response, ApiError> {
    let status = s.status.lock().map_err(|_| ApiError::new(500, "status poisoned"))?;
    let scene = status.scene.clone().ok_or_else(|| ApiError::new(404, "no scene yet: PUT /scene first"))?;
    let mut response = Json(scene).into_response();
    if let Ok(v) = HeaderValue::from_str(&status.revision.to_string()) {
        response.headers_mut().insert("x-streamlib-revision", v);
    }
    Ok(response)
}

/// The SDP of an `rtp` output, for players that take it over HTTP (VLC, ffplay `-i http://…`).
async fn output_sdp(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let status = s.status.lock().map_err(|_| ApiError::new(500, "status poisoned"))?;
    let scene = status.scene.as_ref().ok_or_else(|| ApiError::new(404, "no scene yet: PUT /scene first"))?;
    let outputs = scene["outputs"].as_array().map(Vec::as_slice).unwrap_or_default();
    let (index, output) = outputs
        .iter()
        .enumerate()
        .find(|(i, o)| o["id"].as_str().map_or(format!("output{i}") == id, |name| name == id))
        .ok_or_else(|| ApiError::new(404, format!("no output {:?}", id.chars().take(100).collect::<String>())))?;
    if output["kind"] != "rtp" {
        return Err(ApiError::new(404, format!("output {id} is {}, not rtp: it has no SDP", output["kind"])));
    }
    let mut params = output.clone();
    if let Some(p) = params.as_object_mut() {
        p.remove("id");
        p.remove("kind");
    }
    let bad = |e: serde_json::Error| ApiError::new(500, format!("outputs[{index}]: {e}"));
    let config: streamlib::media::RtpOutputConfig = serde_json::from_value(params).map_err(bad)?;
    let fps: streamlib::Fps = serde_json::from_value(scene["fps"].clone()).map_err(bad)?;
    let size = |k: &str| scene[k].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let sdp = streamlib::media::rtp_sdp(&config, (size("width"), size("height")), fps);
    Ok(([(header::CONTENT_TYPE, "application/sdp")], sdp).into_response())
}

async fn patch_layer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(at): Query<At>,
    body: Bytes,
) -> Result<Json<Applied>, ApiError> {
    let patch = object(json_body(&body)?)?;
    send_update(&s, Update::PatchLayer { id, patch }, at.at_pts_ns).await
}

async fn post_layer(State(s): State<AppState>, body: Bytes) -> Result<Json<Applied>, ApiError> {
    send_update(&s, Update::AddLayer(Value::Object(object(json_body(&body)?)?)), None).await
}

async fn delete_layer(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Applied>, ApiError> {
    send_update(&s, Update::RemoveLayer(id), None).await
}

async fn post_input(State(s): State<AppState>, body: Bytes) -> Result<Json<Applied>, ApiError> {
    let mut spec = object(json_body(&body)?)?;
    let id = match spec.remove("id") {
        Some(Value::String(id)) => id,
        _ => return Err(ApiError::at(422, "id", "an input needs a string `id`")),
    };
    send_update(&s, Update::AddInput { id, spec: Value::Object(spec) }, None).await
}

async fn delete_input(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Applied>, ApiError> {
    send_update(&s, Update::RemoveInput(id), None).await
}

async fn post_output(State(s): State<AppState>, body: Bytes) -> Result<Json<Applied>, ApiError> {
    send_update(&s, Update::AddOutput(Value::Object(object(json_body(&body)?)?)), None).await
}

async fn delete_output(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Applied>, ApiError> {
    send_update(&s, Update::RemoveOutput(id), None).await
}

/// Snapshots in progress at once: each holds a frame and its PNG (up to ~300 MB at 8K).
const MAX_SNAPSHOTS: usize = 2;
static SNAPSHOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_SNAPSHOTS);

async fn snapshot(State(s): State<AppState>) -> Result<Response, ApiError> {
    let _permit = SNAPSHOTS
        .try_acquire()
        .map_err(|_| ApiError::new(503, format!("{MAX_SNAPSHOTS} snapshots are already being taken; retry")))?;
    let (reply, rx) = oneshot::channel();
    s.commands.try_send(Command::Snapshot { reply }).map_err(|_| ApiError::new(503, "renderer busy or stopped"))?;
    let frame = tokio::time::timeout(APPLY_TIMEOUT, rx)
        .await
        .map_err(|_| ApiError::new(504, "no frame in time"))?
        .map_err(|_| ApiError::new(503, "the renderer has stopped"))??;
    let png = tokio::task::spawn_blocking(move || encode_png(&frame))
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// The composited frame (premultiplied) as a straight-alpha PNG, like `S` in the preview.
fn encode_png(frame: &streamlib::OutputFrame) -> Result<Vec<u8>, ApiError> {
    let mut rgba = frame.data.clone();
    streamlib::sinks::unpremultiply(&mut rgba);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, frame.width, frame.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| ApiError::new(500, e.to_string());
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(&rgba).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// 200 while the server can render; 503 with the reason when it cannot (no GPU, the render
/// thread stopped), so a supervisor restarts it.
async fn health(State(s): State<AppState>) -> Response {
    let st = s.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let body = |status: &str| {
        serde_json::json!({ "status": status, "scene": st.scene.is_some(), "frames": st.frames,
            "adapter": st.adapter, "panics": st.panics })
    };
    match &st.render_error {
        None => Json(body("ok")).into_response(),
        Some(reason) => {
            let mut b = body("error");
            b["reason"] = Value::String(reason.clone());
            (StatusCode::SERVICE_UNAVAILABLE, Json(b)).into_response()
        }
    }
}

/// `GET /stats/sync`: the pacing clock's status and the output's timing (missed ticks, fps) and
/// the live inputs' feed states.
async fn sync_stats(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let st = s.status.lock().map_err(|_| ApiError::new(500, "status poisoned"))?;
    let sync: serde_json::Map<String, Value> = st
        .sync
        .iter()
        .map(|(id, stats)| {
            let mut v = serde_json::json!(stats);
            v["offset_p50_ms"] = serde_json::json!(stats.offset_percentile_ms(0.5));
            v["offset_p95_ms"] = serde_json::json!(stats.offset_percentile_ms(0.95));
            (id.clone(), v)
        })
        .collect();
    Ok(Json(serde_json::json!({
        "clock": st.clock,
        "latency_ms": st.latency_ms,
        "mode": if st.latency_ms.is_some() { "aligned" } else { "newest" },
        "output": { "frames": st.frames, "fps": st.fps, "missed_ticks": st.missed_ticks, "ticks": st.ticks,
            "spread_ms": st.spread },
        "inputs": st.inputs,
        "sync": sync,
    })))
}

/// The output's ticks and every live input's place on the timeline, for `/metrics`.
fn sync_metrics(st: &super::render::Status, metric: &mut impl FnMut(&str, &str, &str, Vec<(String, f64)>)) {
    let summary = |s: &streamlib::timing::Summary, labels: &str| {
        [("0.5", s.p50_ms), ("0.95", s.p95_ms), ("0.99", s.p99_ms), ("1", s.max_ms)]
            .iter()
            .map(|(q, ms)| (format!("{{{labels}quantile=\"{q}\"}}"), ms / 1e3))
            .collect::<Vec<_>>()
    };
    if let Some(t) = &st.ticks {
        metric("tick_lateness_seconds", "summary", "How late output ticks were taken up.", summary(&t.lateness, ""));
        metric(
            "clock_reanchors_total",
            "counter",
            "Times the output schedule re-anchored after the clock stepped by more than a frame.",
            vec![(String::new(), t.reanchors as f64)],
        );
    }
    if st.spread.count > 0 {
        metric(
            "sync_spread_seconds",
            "summary",
            "Spread of the capture times of the live frames shown at one tick.",
            summary(&st.spread, ""),
        );
    }
    if st.sync.is_empty() {
        return;
    }
    let per_input = |f: &dyn Fn(&streamlib::timing::SyncStats) -> Option<f64>| {
        st.sync.iter().filter_map(|(id, s)| Some((format!("{{input=\"{id}\"}}"), f(s)?))).collect::<Vec<_>>()
    };
    let mut events = Vec::new();
    for (id, s) in &st.sync {
        for (what, n) in
            [("shown", s.shown), ("repeat", s.repeats), ("drop", s.drops), ("missing", s.missing), ("late", s.late)]
        {
            events.push((format!("{{input=\"{id}\",event=\"{what}\"}}"), n as f64));
        }
    }
    metric(
        "input_sync_ticks_total",
        "counter",
        "Per live input: frames shown, ticks repeating the last frame, frames dropped, ticks with nothing, late frames.",
        events,
    );
    metric("input_fps", "gauge", "A live input's frame rate, from its timestamps.", per_input(&|s| s.fps));
    metric(
        "input_drift_ppm",
        "gauge",
        "A live input's rate against the nearest standard rate, ppm.",
        per_input(&|s| s.drift_ppm),
    );
    metric(
        "input_transit_seconds",
        "gauge",
        "How long a live input's latest frame took from capture to arrival.",
        per_input(&|s| s.transit_ms.map(|ms| ms / 1e3)),
    );
    metric(
        "input_queue_frames",
        "gauge",
        "Frames waiting in a live input's queue.",
        per_input(&|s| Some(s.queue as f64)),
    );
    // The signed offset histogram, cumulative at a few edges (ms): a Prometheus histogram
    // (`_bucket`, `_sum` from the bins' middles, `_count`).
    let mut rows = Vec::new();
    for (id, s) in &st.sync {
        let edges = [-20i64, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20];
        for e in edges {
            // Bin k holds [k − 50, k − 49) ms: those below edge e are bins k < e + 50.
            let below: u64 = s.offset_histogram_ms.iter().take((e + 50).max(0) as usize).sum();
            rows.push((format!("_bucket{{input=\"{id}\",le=\"{}\"}}", e as f64 / 1e3), below as f64));
        }
        let total: u64 = s.offset_histogram_ms.iter().sum();
        let sum_ms: f64 = s.offset_histogram_ms.iter().enumerate().map(|(k, &n)| (k as f64 - 49.5) * n as f64).sum();
        rows.push((format!("_bucket{{input=\"{id}\",le=\"+Inf\"}}"), total as f64));
        rows.push((format!("_sum{{input=\"{id}\"}}"), sum_ms / 1e3));
        rows.push((format!("_count{{input=\"{id}\"}}"), total as f64));
    }
    metric(
        "input_sync_offset_seconds",
        "histogram",
        "Offsets of shown frames from their tick's target (pts − target).",
        rows,
    );
}

async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let st = s.status.lock().map_err(|_| ApiError::new(500, "status poisoned"))?;
    let mut m = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        m += &format!("# HELP streamlib_{name} {help}\n# TYPE streamlib_{name} {kind}\n");
        for (labels, v) in rows {
            m += &format!("streamlib_{name}{labels} {v}\n");
        }
    };
    metric("frames_rendered_total", "counter", "Output frames rendered.", vec![(String::new(), st.frames as f64)]);
    metric("fps", "gauge", "Frames rendered over the last second.", vec![(String::new(), st.fps)]);
    metric(
        "missed_ticks_total",
        "counter",
        "Output ticks skipped because rendering was late.",
        vec![(String::new(), st.missed_ticks as f64)],
    );
    if let Some(c) = &st.clock {
        let label = format!("{{clock=\"{}\"}}", c.name);
        let locked =
            matches!(c.state, streamlib::timing::ClockState::Locked | streamlib::timing::ClockState::FreeRunning);
        metric(
            "clock_locked",
            "gauge",
            "1 while the pacing clock follows its reference (or is its own), 0 unlocked or in holdover.",
            vec![(label.clone(), if locked { 1.0 } else { 0.0 })],
        );
        metric(
            "clock_steps_total",
            "counter",
            "Discontinuities of the pacing clock.",
            vec![(label.clone(), c.steps as f64)],
        );
        let figures = [
            (
                "clock_path_delay_seconds",
                "Mean path delay to the clock's reference.",
                c.path_delay_ns.map(|v| v as f64 / 1e9),
            ),
            ("clock_frequency_ppm", "The clock's rate against the local oscillator, ppm.", c.frequency_ppm),
            ("clock_error_seconds", "Bound on the clock's error.", c.estimated_error_ns.map(|v| v as f64 / 1e9)),
        ];
        for (name, help, value) in figures {
            if let Some(v) = value {
                metric(name, "gauge", help, vec![(label.clone(), v)]);
            }
        }
    }
    sync_metrics(&st, &mut metric);
    let stages = ["sources", "composite", "submit", "readback"];
    metric(
        "stage_seconds_total",
        "counter",
        "CPU time per render stage (readback includes waiting for the GPU).",
        stages.iter().zip(st.stage_seconds).map(|(s, v)| (format!("{{stage=\"{s}\"}}"), v)).collect(),
    );
    let label =
        |s: &super::render::SinkStatus| format!("{{output=\"{}\",sink=\"{}\"}}", s.output, s.name.replace('"', "'"));
    metric(
        "sink_written_total",
        "counter",
        "Frames written per sink.",
        st.sinks.iter().map(|s| (label(s), s.written as f64)).collect(),
    );
    metric(
        "sink_dropped_total",
        "counter",
        "Frames dropped per sink (queue full).",
        st.sinks.iter().map(|s| (label(s), s.dropped as f64)).collect(),
    );
    metric(
        "sink_queue_depth",
        "gauge",
        "Frames waiting in each sink's queue.",
        st.sinks.iter().map(|s| (label(s), s.queue as f64)).collect(),
    );
    let input_label = |i: &super::render::InputStatus| format!("input=\"{}\"", i.input);
    metric(
        "input_state",
        "gauge",
        "Live inputs: 1 for the state each is in (waiting, live, holding the last frame, stale).",
        st.inputs
            .iter()
            .flat_map(|i| {
                ["waiting", "live", "holding", "stale"].into_iter().map(move |state| {
                    let now = serde_json::to_value(i.feed.state).ok() == Some(serde_json::Value::from(state));
                    (format!("{{{},state=\"{state}\"}}", input_label(i)), if now { 1.0 } else { 0.0 })
                })
            })
            .collect(),
    );
    metric(
        "input_latency_seconds",
        "gauge",
        "Latest send-to-arrival latency of a network input.",
        st.inputs
            .iter()
            .filter_map(|i| Some((format!("{{{}}}", input_label(i)), i.feed.latency_ms? / 1000.0)))
            .collect(),
    );
    // Link counters, one family each: streamlib_input_lost_total{input="cam"} ...
    let mut names: Vec<&str> = st.inputs.iter().flat_map(|i| i.feed.counters.keys().copied()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let rows = st
            .inputs
            .iter()
            .filter_map(|i| Some((format!("{{{}}}", input_label(i)), *i.feed.counters.get(name)? as f64)));
        let (family, kind) = if name == "connected" {
            (format!("input_{name}"), "gauge")
        } else {
            (format!("input_{name}_total"), "counter")
        };
        metric(
            &family,
            kind,
            "Network input link counter (see docs/protocol.md and docs/protocols.md).",
            rows.collect(),
        );
    }
    let mut names: Vec<&str> = st.sinks.iter().flat_map(|s| s.counters.keys().copied()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let rows = st.sinks.iter().filter_map(|s| Some((label(s), *s.counters.get(name)? as f64)));
        let (family, kind) = if ["peers", "up", "clients", "viewers"].contains(&name) {
            (format!("sink_net_{name}"), "gauge")
        } else {
            (format!("sink_net_{name}_total"), "counter")
        };
        metric(&family, kind, "Network output counter (see docs/protocol.md and docs/protocols.md).", rows.collect());
    }
    // Layer figures, one family each: streamlib_layer_inference_ms{layer="faces"} ...
    let mut names: Vec<&str> = st.layers.iter().flat_map(|(_, stats)| stats.iter().map(|(n, _)| *n)).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let rows = st.layers.iter().filter_map(|(id, stats)| {
            let value = stats.iter().find(|(n, _)| *n == name)?.1;
            Some((format!("{{layer=\"{}\"}}", id.replace('"', "'")), value))
        });
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        metric(&format!("layer_{name}"), kind, "A layer's figure (ML layers: see docs/ml.md).", rows.collect());
    }
    metric(
        "input_errors_total",
        "counter",
        "Input failures (the input kept its last frame).",
        vec![(String::new(), st.input_errors as f64)],
    );
    metric(
        "layer_errors_total",
        "counter",
        "Layer failures (the layer was skipped).",
        vec![(String::new(), st.layer_errors as f64)],
    );
    metric("updates_applied_total", "counter", "Scene updates applied.", vec![(String::new(), st.revision as f64)]);
    metric(
        "updates_rejected_total",
        "counter",
        "Scene updates rejected.",
        vec![(String::new(), st.updates_rejected as f64)],
    );
    metric(
        "panics_total",
        "counter",
        "Panics caught on the render thread (bugs; the previous scene kept rendering).",
        vec![(String::new(), st.panics as f64)],
    );
    metric(
        "up",
        "gauge",
        "1 while the server can render, 0 when it cannot (see /health).",
        vec![(String::new(), if st.render_error.is_none() { 1.0 } else { 0.0 })],
    );
    metric(
        "command_queue_depth",
        "gauge",
        "Requests waiting for the render thread.",
        vec![(String::new(), s.commands.len() as f64)],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m).into_response())
}

async fn events(State(s): State<AppState>) -> Result<Response, ApiError> {
    let rx = s.events.lock().map_err(|_| ApiError::new(500, "events poisoned"))?.resubscribe();
    // A slow client skips events rather than holding memory; the stream ends when the server stops.
    let stream = BroadcastStream::new(rx).filter_map(|e| e.ok()).map(|v| {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("message").to_string();
        Ok::<_, std::convert::Infallible>(Event::default().event(kind).data(v.to_string()))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

async fn require_token(State(s): State<AppState>, headers: HeaderMap, request: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Constant-time comparison: the token is a secret.
        let ok = given.is_some_and(|g| {
            g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        });
        if !ok {
            let mut r = ApiError::new(401, "missing or wrong bearer token").into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

/// A file under the media root (HLS playlists and segments, recordings). Links are resolved
/// and must stay inside the root; only regular files are served (a FIFO would block).
async fn media(State(s): State<AppState>, Path(path): Path<String>, request: Request) -> Response {
    let resolved = match s.media_root.confine(&path) {
        Ok(p) => p,
        Err(m) => {
            return ApiError::new(404, format!("media/{}: {m}", path.chars().take(200).collect::<String>()))
                .into_response()
        }
    };
    match tokio::fs::metadata(&resolved).await {
        Ok(m) if m.is_file() => {}
        Ok(_) => return ApiError::new(404, "not a regular file").into_response(),
        Err(_) => return ApiError::new(404, "no such file").into_response(),
    }
    use tower::ServiceExt;
    match tower_http::services::ServeFile::new(resolved).oneshot(request).await {
        Ok(r) => r.into_response(),
        Err(e) => ApiError::new(500, e.to_string()).into_response(),
    }
}

/// How long a request body may pause.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A declared length over the limit is refused before waiting for the body (a client that
/// announces 2 GiB and sends nothing would otherwise hold the connection).
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return ApiError::new(413, format!("the body is over the {BODY_LIMIT}-byte limit")).into_response();
    }
    next.run(request).await
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/scene", get(get_scene).put(put_scene))
        .route("/layers", post(post_layer))
        .route("/layers/{id}", patch(patch_layer).delete(delete_layer))
        .route("/inputs", post(post_input))
        .route("/inputs/{id}", delete(delete_input))
        .route("/outputs", post(post_output))
        .route("/outputs/{id}", delete(delete_output))
        .route("/outputs/{id}/sdp", get(output_sdp))
        .route("/snapshot.png", get(snapshot))
        .route("/metrics", get(metrics))
        .route("/stats/sync", get(sync_stats))
        .route("/events", get(events))
        .route("/openapi.json", get(openapi))
        .route("/media/{*path}", get(media))
        .route("/whep/{output}", post(super::whep::whep_offer).options(super::whep::options))
        .route("/whep/{output}/{session}", delete(super::whep::whep_hang_up).patch(super::whep::no_trickle))
        .route("/whip/{input}", post(super::whep::whip_offer).options(super::whep::options))
        .route("/whip/{input}/{session}", delete(super::whep::whip_hang_up).patch(super::whep::no_trickle))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    // Health stays open for load balancers and supervisors.
    // The control room's files hold no data (the page asks for the token), so they stay open.
    Router::new()
        .route("/health", get(health))
        .route("/", get(super::ui::index))
        .route("/ui/{file}", get(super::ui::file))
        .merge(api)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A body that stops arriving frees its connection (reset at each chunk that comes).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(middleware::from_fn(refuse_oversized))
        .with_state(state)
}
