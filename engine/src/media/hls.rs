//! HLS with an adaptive-bitrate ladder: the output is rendered once, scaled on the GPU into each
//! rendition (each is its own NV12 readback), and every rendition is encoded on its own thread by
//! x264 into MPEG-TS segments (hlssink2). We write the master playlist: GStreamer 1.22 has no
//! multivariant sink.

use super::encode::{Codec, EncodePipeline, EncoderSettings, Preset};
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::{Fps, SceneError};
use crate::sinks::{Sink, SinkError};
use gstreamer::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Whether the playlists describe a finished video or a live stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HlsMode {
    /// Every segment stays listed and the playlist ends with `#EXT-X-ENDLIST`.
    #[default]
    Vod,
    /// A sliding window of the newest segments; older segment files are deleted.
    Live,
}

/// One rung of the ladder: `720` or `"720p"` (height, default bitrate, the output's aspect) or an
/// object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RenditionSpec {
    /// A height written as a name, such as `"720p"` (a bare number is read as one too).
    Named(String),
    /// A rendition given field by field.
    Custom(CustomRendition),
}

// By hand rather than `untagged`, whose only error is "data did not match any variant".
impl<'de> Deserialize<'de> for RenditionSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let expected =
            "a height (720), a height name (\"720p\") or {\"height\": 720, \"width\": …, \"bitrate\": …, \"name\": …}";
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(name) => Ok(RenditionSpec::Named(name)),
            serde_json::Value::Number(n) => match n.as_u64().and_then(|h| u32::try_from(h).ok()) {
                Some(h) => Ok(RenditionSpec::Named(format!("{h}p"))),
                None => Err(D::Error::custom(format!("{n} is not a height: expected {expected}"))),
            },
            v @ serde_json::Value::Object(_) => serde_json::from_value(v)
                .map(RenditionSpec::Custom)
                .map_err(|e| D::Error::custom(format!("{e} (expected {expected})"))),
            other => Err(D::Error::custom(format!("expected {expected}, not {other}"))),
        }
    }
}

/// A rendition given as an object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRendition {
    /// Rendition name, used as its directory name; `{height}p` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Width from the height and the output's aspect when absent.
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels; must be even.
    pub height: u32,
    /// kbit/s; a default for the height when absent.
    #[serde(default)]
    pub bitrate: Option<u32>,
}

/// A resolved rendition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rendition {
    /// Rendition name, also its directory under the output directory.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
}

/// A bitrate that looks good for H.264 at `height` lines and 30 fps (Apple's authoring table,
/// rounded).
fn default_bitrate(height: u32) -> u32 {
    match height {
        0..=240 => 400,
        241..=360 => 800,
        361..=480 => 1400,
        481..=540 => 2000,
        541..=720 => 3000,
        721..=1080 => 5000,
        1081..=1440 => 9000,
        _ => 16000,
    }
}

fn even(v: f64) -> u32 {
    ((v / 2.0).round() as u32).max(1) * 2
}

impl RenditionSpec {
    fn parse_named(name: &str) -> Option<u32> {
        name.strip_suffix('p').and_then(|h| h.parse().ok()).filter(|&h| h >= 2)
    }

    fn resolve(&self, output: (u32, u32)) -> Result<Rendition, String> {
        let aspect = output.0 as f64 / output.1.max(1) as f64;
        let (name, width, height, bitrate) = match self {
            RenditionSpec::Named(n) => {
                let h = Self::parse_named(n).ok_or_else(|| format!("{n:?}: name a height like \"720p\""))?;
                (n.clone(), None, h, None)
            }
            RenditionSpec::Custom(c) => {
                (c.name.clone().unwrap_or(format!("{}p", c.height)), c.width, c.height, c.bitrate)
            }
        };
        let width = width.unwrap_or_else(|| even(height as f64 * aspect));
        if width % 2 == 1 || height % 2 == 1 || width < 2 || height < 2 {
            return Err(format!("{name}: H.264 needs an even size, got {width}x{height}"));
        }
        if width > output.0 || height > output.1 {
            return Err(format!("{name}: {width}x{height} is larger than the {}x{} output", output.0, output.1));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') || name.is_empty() {
            return Err(format!("{name:?}: rendition names are used as directory names: A-Z, a-z, 0-9, '_' or '-'"));
        }
        Ok(Rendition { name, width, height, bitrate_kbps: bitrate.unwrap_or(default_bitrate(height)) })
    }
}

/// `"kind": "hls"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HlsConfig {
    /// Output directory: `master.m3u8` and one sub-directory per rendition.
    pub dir: PathBuf,
    /// Renditions, largest first by convention. By default the output size and up to two
    /// smaller steps of 720p / 480p / 360p.
    #[serde(default)]
    pub ladder: Option<Vec<RenditionSpec>>,
    /// Target segment length in seconds (1-60, default 4).
    #[serde(default = "default_segment_seconds")]
    pub segment_seconds: u32,
    /// Video on demand (default) or a live sliding window.
    #[serde(default)]
    pub mode: HlsMode,
    /// Segments listed in a live playlist.
    #[serde(default = "default_window")]
    pub window: u32,
    /// x264 speed preset for every rendition.
    #[serde(default)]
    pub preset: Preset,
}

fn default_segment_seconds() -> u32 {
    4
}
fn default_window() -> u32 {
    6
}

impl HlsConfig {
    fn check(&self) -> Result<(), SceneError> {
        if !(1..=60).contains(&self.segment_seconds) {
            return Err(SceneError::new("segment_seconds", format!("{} is not in 1..=60", self.segment_seconds)));
        }
        if self.window < 3 {
            return Err(SceneError::new("window", "a live playlist lists at least 3 segments (RFC 8216 6.3.3)"));
        }
        if let Some(ladder) = &self.ladder {
            if ladder.is_empty() {
                return Err(SceneError::new("ladder", "needs at least one rendition"));
            }
            for (i, r) in ladder.iter().enumerate() {
                if let RenditionSpec::Named(n) = r {
                    RenditionSpec::parse_named(n).ok_or_else(|| {
                        SceneError::new(format!("ladder[{i}]"), format!("{n:?}: name a height like \"720p\""))
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The ladder for an output of `size`.
    pub fn renditions(&self, size: (u32, u32)) -> Result<Vec<Rendition>, String> {
        let specs = match &self.ladder {
            Some(l) => l.clone(),
            None => {
                let mut l = vec![RenditionSpec::Custom(CustomRendition {
                    name: Some(format!("{}p", size.1)),
                    width: Some(size.0 & !1),
                    height: size.1 & !1,
                    bitrate: None,
                })];
                l.extend(
                    [720u32, 480, 360]
                        .iter()
                        .filter(|&&h| h < size.1)
                        .take(2)
                        .map(|h| RenditionSpec::Named(format!("{h}p"))),
                );
                l
            }
        };
        let renditions = specs.iter().map(|s| s.resolve(size)).collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<&str> = renditions.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("two renditions share a name".into());
        }
        Ok(renditions)
    }
}

/// H.264 level (Table A-1) for a stream: the lowest whose frame size, macroblock rate and
/// bitrate (High profile) fit.
pub fn h264_level(width: u32, height: u32, fps: f64, kbps: u32) -> (&'static str, u8) {
    // (name, level_idc, max macroblocks/s, max frame macroblocks, max High-profile kbit/s)
    const LEVELS: [(&str, u8, f64, u32, u32); 12] = [
        ("2.1", 21, 19_800.0, 792, 5_000),
        ("2.2", 22, 20_250.0, 1_620, 5_000),
        ("3", 30, 40_500.0, 1_620, 12_500),
        ("3.1", 31, 108_000.0, 3_600, 17_500),
        ("3.2", 32, 216_000.0, 5_120, 25_000),
        ("4", 40, 245_760.0, 8_192, 25_000),
        ("4.1", 41, 245_760.0, 8_192, 62_500),
        ("4.2", 42, 522_240.0, 8_704, 62_500),
        ("5", 50, 589_824.0, 22_080, 168_750),
        ("5.1", 51, 983_040.0, 36_864, 300_000),
        ("5.2", 52, 2_073_600.0, 36_864, 300_000),
        ("6.2", 62, 16_711_680.0, 139_264, 1_000_000),
    ];
    let mbs = width.div_ceil(16) * height.div_ceil(16);
    let rate = f64::from(mbs) * fps;
    LEVELS.iter().find(|l| mbs <= l.3 && rate <= l.2 && kbps <= l.4).map_or(("6.2", 62), |l| (l.0, l.1))
}

/// The master (multivariant) playlist for `renditions`.
pub fn master_playlist(renditions: &[Rendition], fps: Fps) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in renditions {
        let (_, idc) = h264_level(r.width, r.height, fps.as_f64(), r.bitrate_kbps);
        // Peak allows for rate-control swings and MPEG-TS overhead; average for TS overhead.
        let average = u64::from(r.bitrate_kbps) * 1100;
        let peak = u64::from(r.bitrate_kbps) * 1400;
        m += &format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},RESOLUTION={}x{},CODECS=\"avc1.6400{idc:02x}\",FRAME-RATE={:.3}\n{}/index.m3u8\n",
            r.width,
            r.height,
            fps.as_f64(),
            r.name
        );
    }
    m
}

/// One rendition's encoder, fed the GPU-scaled NV12 frames of its size.
pub struct HlsRenditionSink {
    pipeline: EncodePipeline,
}

impl HlsRenditionSink {
    fn create(config: &HlsConfig, dir: &Path, r: &Rendition, target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        let rdir = dir.join(&r.name);
        std::fs::create_dir_all(&rdir)
            .map_err(|source| SinkError::Io { path: rdir.display().to_string(), error: source })?;
        let fps = target.fps;
        let gop = (fps.as_f64() * f64::from(config.segment_seconds)).round().max(1.0) as u32;
        let settings = EncoderSettings {
            codec: Some(Codec::H264),
            bitrate: Some(r.bitrate_kbps),
            quality: None,
            preset: config.preset,
            keyframe_interval: Some(gop),
        };
        let (level, _) = h264_level(r.width, r.height, fps.as_f64(), r.bitrate_kbps);
        let encoder = settings.encoder_description(Codec::H264, fps, Some(level));
        let (playlist_length, max_files) = match config.mode {
            HlsMode::Vod => (0, 0),
            HlsMode::Live => (config.window, config.window + 2),
        };
        let rest = format!(
            "{encoder} ! hlssink2 name=out target-duration={} playlist-length={playlist_length} max-files={max_files}",
            config.segment_seconds
        );
        let segments = rdir.join("segment%05d.ts");
        let playlist = rdir.join("index.m3u8");
        // An empty media playlist until hlssink2 writes the first segment's: the master points
        // here from the start, and a process killed before then leaves no dangling reference.
        let empty = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n",
            config.segment_seconds
        );
        std::fs::write(&playlist, empty)
            .map_err(|source| SinkError::Io { path: playlist.display().to_string(), error: source })?;
        let pipeline = EncodePipeline::new(
            &format!("hls {}", r.name),
            PixelFormat::Nv12,
            (r.width, r.height),
            fps,
            &rest,
            &["x264enc", "h264parse", "hlssink2"],
            move |p| {
                let out = p.by_name("out").ok_or("no hlssink2")?;
                out.set_property("location", segments.to_string_lossy().as_ref());
                out.set_property("playlist-location", playlist.to_string_lossy().as_ref());
                Ok(())
            },
        )?;
        Ok(HlsRenditionSink { pipeline })
    }
}

impl Sink for HlsRenditionSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::Nv12
    }

    fn size(&self) -> Option<(u32, u32)> {
        Some(self.pipeline.size())
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        self.pipeline.push(frame)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.pipeline.finish()
    }
}

/// Registry entry for `"kind": "hls"` outputs and `--output DIR/master.m3u8`.
#[derive(Debug, Default)]
pub struct HlsKind;

impl SinkKind for HlsKind {
    type Config = HlsConfig;

    fn extensions(&self) -> &[&str] {
        &["m3u8"]
    }

    fn path_param(&self) -> &'static str {
        "dir"
    }

    fn check(&self, config: &HlsConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(&self, target: &SinkTarget<'_>, mut config: HlsConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        // `--output dir/master.m3u8` names the master playlist; a scene output names the directory.
        let master = if target.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("m3u8")) {
            config.dir = target.path.parent().map(Path::to_path_buf).unwrap_or_default();
            target.path.to_path_buf()
        } else {
            target.path.join("master.m3u8")
        };
        let renditions = config
            .renditions((target.width, target.height))
            .map_err(|m| SinkError::Unsupported(format!("hls ladder: {m}")))?;
        std::fs::create_dir_all(&config.dir)
            .map_err(|source| SinkError::Io { path: config.dir.display().to_string(), error: source })?;
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        for r in &renditions {
            sinks.push(Box::new(HlsRenditionSink::create(&config, &config.dir, r, target)?));
        }
        // Written up front so a live player can start as soon as the first segments exist.
        std::fs::write(&master, master_playlist(&renditions, target.fps))
            .map_err(|source| SinkError::Io { path: master.display().to_string(), error: source })?;
        Ok(sinks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_table_a1() {
        assert_eq!(h264_level(1920, 1080, 30.0, 5000).0, "4");
        assert_eq!(h264_level(1920, 1080, 60.0, 8000).0, "4.2");
        assert_eq!(h264_level(1280, 720, 30.0, 3000).0, "3.1");
        // 720x480 at 30 fps is exactly level 3's 40 500 macroblocks/s; 854 wide needs 3.1.
        assert_eq!(h264_level(720, 480, 30.0, 1400).0, "3");
        assert_eq!(h264_level(854, 480, 30.0, 1400).0, "3.1");
        assert_eq!(h264_level(3840, 2160, 30.0, 16000).0, "5.1");
    }

    #[test]
    fn named_renditions_keep_the_output_aspect() {
        let r = RenditionSpec::Named("480p".into()).resolve((1920, 1080)).expect("480p");
        assert_eq!((r.width, r.height, r.bitrate_kbps), (854, 480, 1400));
        assert!(RenditionSpec::Named("1080p".into()).resolve((1280, 720)).is_err(), "no upscaling");
        assert!(RenditionSpec::Named("big".into()).resolve((1280, 720)).is_err());
    }

    #[test]
    fn ladders_take_heights_names_and_objects_and_say_what_they_expect() {
        let config: HlsConfig =
            serde_json::from_value(serde_json::json!({ "dir": "x", "ladder": [720, "480p", { "height": 360 }] }))
                .expect("numbers, names and objects");
        let names: Vec<String> = config.renditions((1280, 720)).expect("ladder").into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["720p", "480p", "360p"]);
        let err = serde_json::from_value::<HlsConfig>(serde_json::json!({ "dir": "x", "ladder": [true] }))
            .expect_err("a boolean is no rendition")
            .to_string();
        assert!(err.contains("a height (720)") && !err.contains("did not match any variant"), "{err}");
    }

    #[test]
    fn default_ladder_is_the_output_and_two_smaller_steps() {
        let config: HlsConfig = serde_json::from_value(serde_json::json!({ "dir": "x" })).expect("config");
        let names: Vec<String> = config.renditions((1920, 1080)).expect("ladder").into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["1080p", "720p", "480p"]);
        let names: Vec<String> = config.renditions((640, 360)).expect("ladder").into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["360p"]);
    }

    #[test]
    fn master_playlist_names_bandwidth_resolution_and_codecs() {
        let r = vec![Rendition { name: "720p".into(), width: 1280, height: 720, bitrate_kbps: 3000 }];
        let m = master_playlist(&r, Fps::new(30, 1));
        assert!(m.starts_with("#EXTM3U\n"));
        assert!(
            m.contains("BANDWIDTH=4200000,AVERAGE-BANDWIDTH=3300000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\""),
            "{m}"
        );
        assert!(m.contains("\n720p/index.m3u8\n"));
    }
}
