#!/usr/bin/env bash
# The three-hop chain: phone -> edge -> cloud, three streamlib processes in three network
# namespaces joined by veth pairs, speaking streamlib's frame protocol (H.264 over UDP).
#   phone (10.77.1.1)  test pattern + frame counter and timecode, sends to the edge
#   edge  (10.77.1.2 | 10.77.2.1)  adds a drawing and the phone's timecode, forwards to the cloud
#   cloud (10.77.2.2)  publishes HLS (360p and 180p)
# The edge->cloud link loses LOSS % of its datagrams (nftables numgen drop) and is rate-limited
# by a tbf qdisc (this kernel has no netem). Each process prints its link's frames, losses,
# recoveries and latency (per hop from the protocol's send times; glass-to-glass from the phone's
# capture time, one clock since namespaces share it). Run as root; everything is torn down at exit.
#
#   sudo demos/chain/run.sh                    # 10 s at 2 % loss
#   FRAMES=600 LOSS=5 RATE=8mbit sudo demos/chain/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=$(realpath -m "${STREAMLIB:-$root/target/release/streamlib}")
FRAMES=${FRAMES:-300}
LOSS=${LOSS:-2}
RATE=${RATE:-20mbit}
OUT=${OUT:-/tmp/streamlib-chain}
id=${CHAIN_ID:-$$}

if [ "$(id -u)" != 0 ]; then echo "chain: needs root (network namespaces, nftables, tc)" >&2; exit 1; fi
for tool in ip nft tc ffprobe; do
  command -v "$tool" >/dev/null || { echo "chain: $tool is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then (cd "$root" && cargo build --release -p streamlib-cli); fi

phone=slphone$id edge=sledge$id cloud=slcloud$id
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in $phone $edge $cloud; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT

for n in $phone $edge $cloud; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add "pe$id" type veth peer name "ep$id"
ip link set "pe$id" netns "$phone"
ip link set "ep$id" netns "$edge"
ip link add "ec$id" type veth peer name "ce$id"
ip link set "ec$id" netns "$edge"
ip link set "ce$id" netns "$cloud"
ip -n "$phone" addr add 10.77.1.1/24 dev "pe$id"
ip -n "$edge" addr add 10.77.1.2/24 dev "ep$id"
ip -n "$edge" addr add 10.77.2.1/24 dev "ec$id"
ip -n "$cloud" addr add 10.77.2.2/24 dev "ce$id"
ip -n "$phone" link set "pe$id" up
ip -n "$edge" link set "ep$id" up
ip -n "$edge" link set "ec$id" up
ip -n "$cloud" link set "ce$id" up

# Loss and a rate limit on the edge -> cloud link only (the cloud's NACKs and keyframe requests
# come back unharmed; resent datagrams are lost at the same rate).
ip netns exec "$edge" nft -f - <<NFT
table inet chainloss {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "ec$id" udp dport 9002 numgen random mod 100 < $LOSS counter drop
  }
}
NFT
ip netns exec "$edge" tc qdisc add dev "ec$id" root tbf rate "$RATE" burst 256kb latency 100ms

rm -rf "$OUT" && mkdir -p "$OUT"/{phone,edge,cloud}
runtime="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$runtime" && chmod 700 "$runtime"
hop() { # name netns scene frames
  (cd "$OUT/$1" && exec ip netns exec "$2" env XDG_RUNTIME_DIR="$runtime" RUST_LOG=warn \
    "$BIN" render "$here/$3.json" --realtime --frames "$4" >"$OUT/$1/log" 2>&1) &
  pids+=($!)
}
echo "chain: phone -> edge -> cloud, $FRAMES frames, $LOSS % loss and $RATE on edge -> cloud; logs in $OUT"
# Started cloud, edge, phone a second apart; the edge stops before the phone, so it never forwards
# a held frame (whose capture time would only grow) and the cloud outlives the edge.
hop cloud "$cloud" cloud $((FRAMES + 90))
sleep 1
hop edge "$edge" edge $((FRAMES + 30))
sleep 1
hop phone "$phone" phone $((FRAMES + 60))
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()

for n in phone edge cloud; do
  echo "== $n"
  grep -E '^(rendered|input|output)|error' "$OUT/$n/log" || tail -n 5 "$OUT/$n/log"
done
echo "== edge -> cloud link: $(ip netns exec "$edge" nft list table inet chainloss | grep -o 'packets [0-9]*' | head -n 1) dropped by nftables"
playlist=$(find "$OUT/cloud/hls" -name '*.m3u8' ! -name master.m3u8 | sort | head -n 1)
if [ -n "$playlist" ]; then
  frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$playlist" | sed -n 1p)
  echo "== cloud HLS: $playlist plays $frames frames (ffprobe)"
  last=$(find "$OUT/cloud/hls" -name '*.ts' -o -name '*.m4s' | sort | tail -n 1)
  # Every frame of the last segment over the same file: the last one stays.
  [ -n "$last" ] && ffmpeg -v error -y -i "$last" -update 1 "$OUT/cloud/last.png" \
    && echo "== the phone's frame counter as the cloud shows it: $OUT/cloud/last.png"
fi
exit $status
