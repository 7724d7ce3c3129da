#!/usr/bin/env python3
"""Checks a converted model against the TFLite runtime: check_conversion.py IN.tflite OUT.onnx PICTURE.

Both run the same picture (resized to the model's input, scaled to [-1, 1]); every output the
ONNX model has (all of TFLite's unless it was converted with --outputs) must agree within
1e-3 + 2e-4 × its largest magnitude. Exits 1 naming the output that does not.
"""

import sys

import numpy as np
import onnxruntime
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


def main():
    tflite_path, onnx_path, picture = sys.argv[1:4]
    interpreter = Interpreter(model_path=tflite_path)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    height, width = source["shape"][1:3]
    image = Image.open(picture).convert("RGB").resize((width, height), Image.BILINEAR)
    x = (np.asarray(image, dtype=np.float32) / 127.5 - 1.0)[None]
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: x})))
    failed = False
    for detail in interpreter.get_output_details():
        if detail["name"] not in got:
            continue
        want = interpreter.get_tensor(detail["index"])
        have = got[detail["name"]]
        diff = float(np.abs(want - have).max()) if want.shape == have.shape else float("inf")
        allowed = 1e-3 + 2e-4 * float(np.abs(want).max())
        ok = diff <= allowed
        failed |= not ok
        print(f"check: {onnx_path.split('/')[-1]} {detail['name']} {list(want.shape)} max |diff| {diff:.3g} (allowed {allowed:.3g}) {'ok' if ok else 'MISMATCH'}")
    sys.exit(1 if failed or not got else 0)


if __name__ == "__main__":
    main()
