//! Frame rates as exact rationals, so 29.97 fps timestamps never drift.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A frame rate `num/den` frames per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fps {
    /// Numerator: frames per `den` seconds.
    pub num: u32,
    /// Denominator, in seconds.
    pub den: u32,
}

impl Default for Fps {
    fn default() -> Self {
        Fps { num: 30, den: 1 }
    }
}

impl Fps {
    /// The rate `num/den` frames per second (not validated).
    pub const fn new(num: u32, den: u32) -> Self {
        Fps { num, den }
    }

    /// Nearest rational for a decimal rate; the NTSC rates map to their exact /1001 forms.
    pub fn from_f64(fps: f64) -> Option<Fps> {
        if !fps.is_finite() || fps <= 0.0 || fps > 1000.0 {
            return None;
        }
        for base in [24u32, 30, 48, 60, 120] {
            let ntsc = f64::from(base) * 1000.0 / 1001.0;
            if (fps - ntsc).abs() < 0.006 {
                return Some(Fps::new(base * 1000, 1001));
            }
        }
        let num = (fps * 1000.0).round() as u32;
        let g = gcd(num, 1000);
        Some(Fps::new(num / g, 1000 / g))
    }

    /// The rate in frames per second as a decimal number.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Presentation time of frame `index` in nanoseconds, computed exactly (no accumulated error).
    pub fn pts_ns(self, index: u64) -> u64 {
        // A zero rate only comes from a hand-built `Fps` that skipped validation: no time passes.
        (u128::from(index) * 1_000_000_000 * u128::from(self.den)).checked_div(u128::from(self.num)).unwrap_or(0) as u64
    }

    /// Duration of frame `index`: the gap to the next frame's pts.
    pub fn duration_ns(self, index: u64) -> u64 {
        self.pts_ns(index + 1) - self.pts_ns(index)
    }

    pub(crate) fn validate(self) -> Result<(), String> {
        // Below one frame a second the render loop would sleep longer than a client waits for an
        // update to apply (and `1/4294967295` for 136 years).
        if self.num == 0 || self.den == 0 || !(MIN_FPS..=MAX_FPS).contains(&self.as_f64()) {
            return Err(format!("{self} is not a frame rate in [{MIN_FPS}, {MAX_FPS}]"));
        }
        Ok(())
    }
}

/// The frame rates a scene may have.
pub const MIN_FPS: f64 = 1.0;
/// Highest frame rate a scene may have.
pub const MAX_FPS: f64 = 1000.0;

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl Serialize for Fps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.den == 1 {
            s.serialize_u32(self.num)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Fps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let bad = |what: &dyn fmt::Display| {
            serde::de::Error::custom(format!("{what} is not a frame rate: use a number in [1, 1000] or \"num/den\""))
        };
        match Raw::deserialize(d)? {
            Raw::Number(n) => Fps::from_f64(n).ok_or_else(|| bad(&n)),
            Raw::Text(t) => {
                let (n, dd) = t.split_once('/').ok_or_else(|| bad(&t))?;
                let fps = Fps::new(n.trim().parse().map_err(|_| bad(&t))?, dd.trim().parse().map_err(|_| bad(&t))?);
                fps.validate().map_err(|_| bad(&t))?;
                Ok(fps)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntsc_rates_are_exact() {
        assert_eq!(Fps::from_f64(29.97), Some(Fps::new(30000, 1001)));
        assert_eq!(Fps::from_f64(59.94), Some(Fps::new(60000, 1001)));
        assert_eq!(Fps::from_f64(25.0), Some(Fps::new(25, 1)));
        assert_eq!(Fps::from_f64(12.5), Some(Fps::new(25, 2)));
    }

    #[test]
    fn pts_do_not_drift() {
        let fps = Fps::new(30000, 1001);
        // One hour of 29.97: frame 107892 lands at exactly 3600 s (to the nanosecond floor).
        assert_eq!(fps.pts_ns(107_892), 3_599_996_400_000);
        let total: u64 = (0..1000).map(|i| fps.duration_ns(i)).sum();
        assert_eq!(total, fps.pts_ns(1000));
    }

    #[test]
    fn parses_json_forms() {
        let f: Fps = serde_json::from_str("\"30000/1001\"").expect("rational");
        assert_eq!(f, Fps::new(30000, 1001));
        let f: Fps = serde_json::from_str("60").expect("number");
        assert_eq!(f, Fps::new(60, 1));
        assert!(serde_json::from_str::<Fps>("0").is_err());
        assert!(serde_json::from_str::<Fps>("\"1/0\"").is_err());
        assert!(serde_json::from_str::<Fps>("-5").is_err());
    }
}
