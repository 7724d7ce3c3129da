//! Live inputs: cameras through v4l2 and the X11 screen through ximagesrc. They never end and
//! cannot seek; a late frame is dropped rather than queued (appsink keeps only the newest).

use super::decode::{GstProducer, APPSINK_CAPS};
use super::{init, MediaError};
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::scene::SceneError;
use crate::sources::{Source, SourceError, ThreadedSource};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::{Deserialize, Serialize};

/// A capture device GStreamer's device monitor reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// The device's display name.
    pub name: String,
    /// The v4l2 device node, e.g. `/dev/video0`.
    pub path: Option<String>,
    /// The caps it offers, GStreamer's notation.
    pub caps: Option<String>,
}

/// Cameras (video sources) present on this machine.
pub fn list_cameras() -> Result<Vec<DeviceInfo>, MediaError> {
    init()?;
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Video/Source"), None);
    monitor.start().map_err(|e| MediaError::Gstreamer(format!("cannot list devices: {e}")))?;
    let devices = monitor
        .devices()
        .into_iter()
        .map(|d| DeviceInfo {
            name: d.display_name().to_string(),
            path: d.properties().and_then(|p| p.get::<String>("api.v4l2.path").or(p.get::<String>("device.path")).ok()),
            caps: d.caps().map(|c| c.to_string()),
        })
        .collect();
    monitor.stop();
    Ok(devices)
}

/// `"kind": "camera"`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Device node; the first camera found when absent.
    #[serde(default)]
    pub device: Option<String>,
    /// Requested capture size and rate; the camera's default when absent.
    #[serde(default)]
    pub width: Option<u32>,
    /// Requested capture height in pixels; the camera's default when absent.
    #[serde(default)]
    pub height: Option<u32>,
    /// Requested frame rate in frames per second; the camera's default when absent.
    #[serde(default)]
    pub fps: Option<u32>,
}

/// The producer a camera input runs: a GStreamer pipeline feeding frames.
pub type CameraProducer = GstProducer;

fn caps_filter(width: Option<u32>, height: Option<u32>, fps: Option<u32>) -> String {
    let mut caps = String::from("video/x-raw");
    if let Some(w) = width {
        caps += &format!(",width={w}");
    }
    if let Some(h) = height {
        caps += &format!(",height={h}");
    }
    if let Some(f) = fps {
        caps += &format!(",framerate={f}/1");
    }
    caps
}

fn quoted(value: &str) -> Result<String, SourceError> {
    if value.contains(['"', '\\', '\n']) {
        return Err(SourceError::Unsupported(format!("{value:?}: quotes and backslashes are not allowed")));
    }
    Ok(format!("\"{value}\""))
}

impl CameraConfig {
    /// Starts capturing from the device (the first camera found when none is named).
    pub fn open(&self) -> Result<GstProducer, SourceError> {
        init().map_err(|e| SourceError::Open { path: "camera".into(), message: e.to_string() })?;
        let device = match &self.device {
            Some(d) => d.clone(),
            None => {
                let cameras =
                    list_cameras().map_err(|e| SourceError::Open { path: "camera".into(), message: e.to_string() })?;
                cameras.iter().find_map(|c| c.path.clone()).ok_or_else(|| SourceError::Open {
                    path: "camera".into(),
                    message: "no camera found (no video capture device under /dev/video*); name one with `device`"
                        .into(),
                })?
            }
        };
        if !std::path::Path::new(&device).exists() {
            return Err(SourceError::Open { path: device, message: "no such camera device".into() });
        }
        let description = format!(
            "v4l2src device={} ! {} ! videoconvert ! appsink name=sink caps=\"{APPSINK_CAPS}\"",
            quoted(&device)?,
            caps_filter(self.width, self.height, self.fps)
        );
        GstProducer::launch(&device, &description, true)
    }
}

/// `"kind": "screen"`: the X11 screen (or a region of it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenConfig {
    /// X display, e.g. `:0`; `$DISPLAY` when absent.
    #[serde(default)]
    pub display: Option<String>,
    /// Region `[x, y, w, h]` in screen pixels; the whole screen when absent.
    #[serde(default)]
    pub region: Option<[u32; 4]>,
    /// Whether the mouse pointer is drawn into the capture.
    #[serde(default)]
    pub show_pointer: bool,
    /// Capture rate; the scene's fps when absent.
    #[serde(default)]
    pub fps: Option<u32>,
}

impl ScreenConfig {
    fn check(&self) -> Result<(), SceneError> {
        if let Some([_, _, w, h]) = self.region {
            if w == 0 || h == 0 {
                return Err(SceneError::new("region", "width and height must be positive"));
            }
        }
        if self.fps == Some(0) {
            return Err(SceneError::new("fps", "must be positive"));
        }
        Ok(())
    }

    /// Starts capturing the screen, at `default_fps` frames per second unless `fps` is set.
    pub fn open(&self, default_fps: u32) -> Result<GstProducer, SourceError> {
        let display = self.display.clone().or_else(|| std::env::var("DISPLAY").ok()).ok_or_else(|| {
            SourceError::Open { path: "screen".into(), message: "no X display: set DISPLAY or `display`".into() }
        })?;
        let mut src =
            format!("ximagesrc display-name={} use-damage=false show-pointer={}", quoted(&display)?, self.show_pointer);
        if let Some([x, y, w, h]) = self.region {
            src += &format!(" startx={x} starty={y} endx={} endy={}", x + w - 1, y + h - 1);
        }
        let fps = self.fps.unwrap_or(default_fps).max(1);
        let description =
            format!("{src} ! video/x-raw,framerate={fps}/1 ! videoconvert ! appsink name=sink caps=\"{APPSINK_CAPS}\"");
        GstProducer::launch(&format!("screen {display}"), &description, true)
    }
}

/// GStreamer's `videotestsrc` patterns a `live_test` input may name.
pub const LIVE_TEST_PATTERNS: [&str; 25] = [
    "smpte",
    "snow",
    "black",
    "white",
    "red",
    "green",
    "blue",
    "checkers-1",
    "checkers-2",
    "checkers-4",
    "checkers-8",
    "circular",
    "blink",
    "smpte75",
    "zone-plate",
    "gamut",
    "chroma-zone-plate",
    "solid-color",
    "ball",
    "smpte100",
    "bar",
    "pinwheel",
    "spokes",
    "gradient",
    "colors",
];

/// `"kind": "live_test"`: a live GStreamer test source that behaves like a camera — frames at
/// its own rate, stamped when made, delivered `delay_ms` later — for trying synchronisation,
/// mosaics and live outputs without a camera. The `ball` pattern moves with the capture time,
/// so aligned inputs show it in the same place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveTestConfig {
    /// `videotestsrc` pattern (`smpte`, `ball`, `pinwheel`, …).
    #[serde(default = "default_live_pattern")]
    pub pattern: String,
    /// Frame width in pixels.
    #[serde(default = "default_live_width")]
    pub width: u32,
    /// Frame height in pixels.
    #[serde(default = "default_live_height")]
    pub height: u32,
    /// Its own frame rate.
    #[serde(default)]
    pub fps: crate::scene::Fps,
    /// How long after capture its frames arrive (a camera's or a link's delay), ms.
    #[serde(default)]
    pub delay_ms: f64,
}

fn default_live_pattern() -> String {
    "ball".into()
}
fn default_live_width() -> u32 {
    640
}
fn default_live_height() -> u32 {
    360
}

impl Default for LiveTestConfig {
    fn default() -> Self {
        LiveTestConfig {
            pattern: default_live_pattern(),
            width: default_live_width(),
            height: default_live_height(),
            fps: crate::scene::Fps::default(),
            delay_ms: 0.0,
        }
    }
}

impl LiveTestConfig {
    fn check(&self) -> Result<(), SceneError> {
        if !LIVE_TEST_PATTERNS.contains(&self.pattern.as_str()) {
            return Err(SceneError::new(
                "pattern",
                format!("unknown pattern {:?} (known: {})", self.pattern, LIVE_TEST_PATTERNS.join(", ")),
            ));
        }
        crate::scene::check_size(self.width, self.height).map_err(|m| SceneError::new("width", m))?;
        self.fps.validate().map_err(|m| SceneError::new("fps", m))?;
        if !(self.delay_ms.is_finite() && (0.0..=5000.0).contains(&self.delay_ms)) {
            return Err(SceneError::new("delay_ms", format!("{} is not in 0..=5000", self.delay_ms)));
        }
        Ok(())
    }

    /// Starts the source.
    pub fn open(&self) -> Result<GstProducer, SourceError> {
        let delay = (self.delay_ms * 1e6) as u64;
        // `queue` lets a frame go once the frames behind it span the threshold: one frame
        // period more than the delay (measured: 120 ms at 25 fps held frames 80 ms).
        let threshold = if delay == 0 { 0 } else { delay + self.fps.duration_ns(0) };
        // Timestamps start at the timeline's now (the pipeline's running time: see
        // `media::timeline`), not at 0, or every frame would be due long ago and come in a burst.
        let offset = crate::timing::timeline::now_ns();
        let description = format!(
            "videotestsrc is-live=true pattern={} animation-mode=running-time timestamp-offset={offset} \
             ! video/x-raw,format=I420,width={},height={},framerate={}/{} \
             ! queue min-threshold-time={threshold} max-size-time={} max-size-buffers=0 max-size-bytes=0 \
             ! appsink name=sink caps=\"{APPSINK_CAPS}\"",
            self.pattern,
            self.width,
            self.height,
            self.fps.num,
            self.fps.den,
            threshold + 1_000_000_000,
        );
        GstProducer::launch(&format!("live_test {}", self.pattern), &description, true)
    }
}

/// Registry entry for `"kind": "live_test"`.
#[derive(Debug, Default)]
pub struct LiveTestKind;

impl InputKind for LiveTestKind {
    type Config = LiveTestConfig;

    fn check(&self, config: &LiveTestConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(&self, id: &str, config: LiveTestConfig, _ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let producer = config.open().map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        spawn_live(id, producer)
    }
}

/// Registry entry for `"kind": "camera"`.
#[derive(Debug, Default)]
pub struct CameraKind;

impl InputKind for CameraKind {
    type Config = CameraConfig;

    fn build(&self, id: &str, config: CameraConfig, _ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let producer = config.open().map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        spawn_live(id, producer)
    }
}

/// Registry entry for `"kind": "screen"`.
#[derive(Debug, Default)]
pub struct ScreenKind;

impl InputKind for ScreenKind {
    type Config = ScreenConfig;

    fn depends_on_scene(&self, _config: &ScreenConfig) -> bool {
        true
    }

    fn check(&self, config: &ScreenConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(&self, id: &str, config: ScreenConfig, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let fps = ctx.scene.fps.as_f64().round().max(1.0) as u32;
        let producer = config.open(fps).map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        spawn_live(id, producer)
    }
}

fn spawn_live(id: &str, producer: GstProducer) -> Result<Box<dyn Source>, BuildError> {
    let color_space = producer.color_space();
    // Live frames carry capture timestamps, not our output's: show the newest whatever its pts.
    let source = ThreadedSource::spawn(id, producer, color_space, u64::MAX / 4).map_err(|e| BuildError::new(id, e))?;
    Ok(Box::new(source))
}
