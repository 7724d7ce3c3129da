//! Colours as users write them (`#RRGGBB`, `#RRGGBBAA`, straight alpha).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An sRGB-encoded colour with straight (non-premultiplied) alpha, 8 bits a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red channel, sRGB-encoded.
    pub r: u8,
    /// Green channel, sRGB-encoded.
    pub g: u8,
    /// Blue channel, sRGB-encoded.
    pub b: u8,
    /// Alpha channel, straight (not premultiplied); 255 is opaque.
    pub a: u8,
}

impl Color {
    /// Opaque black.
    pub const BLACK: Color = Color::rgba(0, 0, 0, 255);
    /// Opaque white.
    pub const WHITE: Color = Color::rgba(255, 255, 255, 255);
    /// Fully transparent black.
    pub const TRANSPARENT: Color = Color::rgba(0, 0, 0, 0);

    /// A colour from its 8-bit channels, with straight alpha.
    pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> Self {
        Color { r, g, b, a }
    }

    /// Premultiplied channels in 0..=1, the form every GPU stage works in.
    pub fn premultiplied(self) -> [f64; 4] {
        let a = f64::from(self.a) / 255.0;
        [f64::from(self.r) / 255.0 * a, f64::from(self.g) / 255.0 * a, f64::from(self.b) / 255.0 * a, a]
    }

    /// Straight channels in 0..=1.
    pub fn to_f32(self) -> [f32; 4] {
        [self.r, self.g, self.b, self.a].map(|c| f32::from(c) / 255.0)
    }
}

/// Why a colour string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid colour {0:?}: expected #RRGGBB or #RRGGBBAA")]
pub struct ColorParseError(pub String);

impl FromStr for Color {
    type Err = ColorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ColorParseError(s.to_string());
        let hex = s.strip_prefix('#').ok_or_else(err)?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| err());
        let a = if hex.len() == 8 { byte(6)? } else { 255 };
        Ok(Color::rgba(byte(0)?, byte(2)?, byte(4)?, a))
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02X}{:02X}{:02X}", self.r, self.g, self.b)?;
        if self.a != 255 {
            write!(f, "{:02X}", self.a)?;
        }
        Ok(())
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!("#FF8000".parse(), Ok(Color::rgba(255, 128, 0, 255)));
        assert_eq!("#ff800080".parse(), Ok(Color::rgba(255, 128, 0, 128)));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["FF8000", "#FF80", "#GG8000", "#FF800", "#FF80000", "", "#", "#ÿÿÿ"] {
            assert!(bad.parse::<Color>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["#102030", "#10203040"] {
            assert_eq!(s.parse::<Color>().map(|c| c.to_string()).as_deref(), Ok(s));
        }
    }
}
