#!/usr/bin/env python3
"""Fuzzes the render server's HTTP API (issue 20).

Starts `streamlib serve` on loopback with a scratch media root (holding a symlink out of it, a
FIFO and a file), then sends structural mutations of valid bodies to every route, broken HTTP
(truncated bodies, lying Content-Length, slow and garbage headers) and bursts of concurrent
connections. After every batch it checks that the server is alive, /health is 200, frames keep
advancing, and that the scene changed only through accepted requests (its revision moves by one
per 2xx update and not at all on a refusal). Any 500, any other 5xx outside the concurrent burst,
a dead server or a broken invariant fails the run (exit 1).

    python3 scripts/fuzz_api.py --bin target/debug/streamlib --requests 100000 --seed 7

Bounded in count and in time (--max-seconds). Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SCENE = {
    "width": 64, "height": 48, "fps": 30, "background": "#0000FF",
    "inputs": {"red": {"kind": "test_pattern", "pattern": "solid", "color": "#FF0000"},
               "box": {"kind": "test_pattern", "pattern": "moving_box"}},
    "layers": [
        {"id": "box", "kind": "video", "input": "red", "rect": [0, 0, 16, 16]},
        {"id": "mover", "kind": "video", "input": "box", "z": 1, "opacity": 0.5},
        {"id": "label", "kind": "text", "z": 2, "text": "{frame}", "size": 12, "rect": [0, 30, 64, 18]},
        {"id": "shape", "kind": "vector", "z": 3, "shapes": [{"type": "circle", "cx": 8, "cy": 8, "r": 4, "fill": "#FFFFFF"}]},
    ],
}

BODIES = [
    ("PUT", "/scene", SCENE),
    ("PATCH", "/layers/box", {"opacity": 0.5, "rect": [8, 8, 16, 16], "z": 2, "visible": True, "blend": "screen"}),
    ("PATCH", "/layers/label", {"text": "hello {timecode}", "size": 14, "color": "#00FF00"}),
    ("POST", "/layers", {"id": "extra", "kind": "text", "text": "x", "rect": [0, 0, 20, 10]}),
    ("POST", "/layers", {"id": "pic", "kind": "image", "path": "pic.png"}),
    ("POST", "/inputs", {"id": "green", "kind": "test_pattern", "pattern": "checkerboard", "color": "#00FF00", "cell": 4}),
    ("POST", "/inputs", {"id": "clip", "kind": "y4m", "path": "clip.y4m"}),
    ("POST", "/outputs", {"id": "rec", "kind": "y4m", "path": "rec.y4m"}),
    ("POST", "/outputs", {"id": "still", "kind": "png", "path": "still.png"}),
]

WEIRD = [
    None, True, False, 0, -1, 1, 2 ** 31, 2 ** 64, -2 ** 63, 1e308, -1e308, 0.5, "", "x" * 5000,
    "🎬 ünïcode", "nul\u0000byte", "/etc/passwd", "../../etc/passwd", "link/passwd", "fifo", "/dev/zero",
    "pic.png", ".", "a/" * 300, [], {}, [1, 2, 3], {"a": {"b": {"c": None}}}, "#FFFFFFFF", "1/4294967295",
    [0, 0, 1e9, 1e9], [-5, -5, 3, 3], "normal", "multiply", 16384, 100000,
]


def deep(n):
    v = 1
    for _ in range(n):
        v = [v]
    return v


def mutate(value, rng, depth=0):
    """One structural mutation somewhere in `value` (a copy)."""
    if rng.random() < 0.25 or depth > 4 or not isinstance(value, (dict, list)) or not value:
        r = rng.random()
        if r < 0.7:
            return rng.choice(WEIRD)
        if r < 0.8:
            return deep(rng.choice([50, 200]))
        if r < 0.9:
            return {"k" * rng.randint(1, 300): rng.choice(WEIRD)}
        return rng.randint(-10 ** 12, 10 ** 12)
    value = json.loads(json.dumps(value))
    if isinstance(value, dict):
        key = rng.choice(list(value))
        r = rng.random()
        if r < 0.15:
            del value[key]
        elif r < 0.25:
            value[rng.choice(["extra", "id", "kind", "path", "rect", "fps", "dir"])] = rng.choice(WEIRD)
        else:
            value[key] = mutate(value[key], rng, depth + 1)
    else:
        i = rng.randrange(len(value))
        value[i] = mutate(value[i], rng, depth + 1)
    return value


class Server:
    def __init__(self, binary, root):
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--media-root", root, "--header-timeout", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on http://"):
            raise SystemExit(f"server did not start: {line!r}")
        host, port = line.strip().removeprefix("listening on http://").rsplit(":", 1)
        self.host, self.port = host, int(port)

    def request(self, method, path, body=None, raw_body=None, timeout=30):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            conn.close()

    def raw(self, data, wait=0.0, read=True):
        s = socket.create_connection((self.host, self.port), timeout=5)
        try:
            s.sendall(data)
            if wait:
                time.sleep(wait)
            if read:
                try:
                    return s.recv(200)
                except (socket.timeout, ConnectionError):
                    return b""
        finally:
            s.close()
        return b""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


class Fuzz:
    def __init__(self, server, rng):
        self.s, self.rng = server, rng
        self.stats = {"requests": 0, "2xx": 0, "4xx": 0, "5xx": 0, "raw": 0, "burst_5xx": 0}
        self.failures = []

    def revision(self):
        status, _, headers = self.s.request("GET", "/scene")
        if status != 200:
            return None
        return int({k.lower(): v for k, v in headers.items()}.get("x-streamlib-revision", "0"))

    def frames(self):
        status, body, _ = self.s.request("GET", "/health")
        if status != 200:
            self.failures.append(f"/health answered {status}: {body[:200]!r}")
            return -1
        return json.loads(body)["frames"]

    def fail(self, what):
        self.failures.append(what)

    def one(self):
        rng = self.rng
        method, path, body = rng.choice(BODIES)
        if rng.random() < 0.1:
            method, path, body = rng.choice([
                ("DELETE", f"/layers/{rng.choice(['box', 'extra', 'nope', 'label'])}", None),
                ("DELETE", f"/inputs/{rng.choice(['red', 'green', 'clip', 'nope'])}", None),
                ("GET", "/media/" + rng.choice(["link/passwd", "fifo", "pic.png", "a/" * 2000, "../x", "%00", "rec.y4m"]), None),
                ("GET", "/snapshot.png", None), ("GET", "/metrics", None), ("GET", "/openapi.json", None),
                ("PATCH", "/layers/" + "x" * rng.choice([1, 300, 5000]), {"opacity": 0.1}),
            ])
        else:
            body = mutate(body, rng)
        raw = None
        if body is not None and rng.random() < 0.05:
            raw = json.dumps(body).encode() + rng.choice([b"xyz", b"}", b"\x00", b" ", b"\xff\xfe"])
        elif body is not None and rng.random() < 0.02:
            n = rng.choice([1000, 100000])  # deeper than any recursive parser should follow
            raw = b"[" * n + b"]" * n
        before = self.revision() if method in ("PUT", "PATCH", "POST", "DELETE") else None
        try:
            status, text, _ = self.s.request(method, path + (f"?at_pts_ns={rng.randint(0, 10**9)}" if rng.random() < 0.02 else ""), body, raw)
        except (ConnectionError, socket.timeout, http.client.HTTPException) as e:
            self.fail(f"{method} {path}: {e!r}")
            return
        self.stats["requests"] += 1
        self.stats[f"{status // 100}xx"] = self.stats.get(f"{status // 100}xx", 0) + 1
        if status >= 500:
            self.fail(f"{method} {path} {json.dumps(body)[:300]} -> {status} {text[:300]!r}")
        if before is not None and status < 500:
            after = self.revision()
            accepted = 200 <= status < 300
            if after is None or after != before + (1 if accepted else 0):
                # A deferred update (?at_pts_ns) may apply later; only plain ones are checked.
                if "at_pts_ns" not in path:
                    self.fail(f"{method} {path} -> {status}: revision {before} -> {after}")
            if accepted and path == "/outputs":
                self.s.request("DELETE", f"/outputs/{body.get('id')}")
            if accepted and method == "PUT":
                # Back to the base scene, so mutations start from something that renders.
                self.s.request("PUT", "/scene", SCENE)

    def broken_http(self):
        rng = self.rng
        cases = [
            lambda: self.s.raw(b"PUT /scene HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"width\":", read=False),
            lambda: self.s.raw(b"PATCH /layers/box HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\n"),
            lambda: self.s.raw(b"PATCH /layers/box HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}"),
            lambda: self.s.raw(b"GET /health HTTP/1.1\r\nHost: x\r\n", wait=0.05, read=False),
            lambda: self.s.raw(b"\x00\x01\x02 garbage \r\n\r\n"),
            lambda: self.s.raw(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            lambda: self.s.raw(b"GET /health HTTP/1.1\r\n" + b"X-Long: " + b"y" * 100000 + b"\r\n\r\n"),
            lambda: self.s.raw(b"POST /layers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", read=True),
        ]
        for _ in range(10):
            try:
                rng.choice(cases)()
            except OSError:
                pass  # the server may close a bad connection first: that is the point
            self.stats["raw"] += 1

    def burst(self, n=200):
        results = []

        def hit():
            try:
                status, _, _ = self.s.request("GET", "/health", timeout=30)
                results.append(status)
            except OSError as e:
                results.append(repr(e))

        threads = [threading.Thread(target=hit) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.stats["burst_5xx"] += sum(1 for r in results if isinstance(r, int) and r >= 500)
        if 200 not in results:
            self.fail(f"a burst of {n} got no 200: {results[:5]}")

    def check(self, last_frames):
        if not self.s.alive():
            self.fail("the server died")
            return last_frames
        time.sleep(0.15)
        frames = self.frames()
        if frames <= last_frames:
            self.fail(f"frames stopped advancing ({last_frames} -> {frames})")
        return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/debug/streamlib")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=3600)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="streamlib-fuzz-")
    os.symlink("/etc", os.path.join(root, "link"))
    os.mkfifo(os.path.join(root, "fifo"))
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "assets", "images", "logo.png"), os.path.join(root, "pic.png"))
    server = Server(args.bin, root)
    fuzz = Fuzz(server, rng)
    started = time.time()
    try:
        status, body, _ = server.request("PUT", "/scene", SCENE)
        if status != 200:
            raise SystemExit(f"the base scene was refused: {status} {body!r}")
        frames = fuzz.frames()
        while fuzz.stats["requests"] < args.requests and time.time() - started < args.max_seconds:
            for _ in range(args.batch):
                fuzz.one()
                if fuzz.failures:
                    break
            fuzz.broken_http()
            if rng.random() < 0.2:
                fuzz.burst()
            frames = fuzz.check(frames)
            if fuzz.failures:
                break
        code = server.stop()
        if code != 0:
            fuzz.fail(f"SIGTERM: exit code {code}")
    finally:
        if server.alive():
            server.proc.kill()
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.time() - started
    print(f"fuzz: {fuzz.stats} in {elapsed:.0f} s (seed {args.seed})")
    for f in fuzz.failures[:20]:
        print("FAIL:", f)
    sys.exit(1 if fuzz.failures else 0)


if __name__ == "__main__":
    main()
