#!/usr/bin/env python3
"""Makes the segment layer's test reference with the TFLite runtime, not our code:
reference_mask.py SELFIE.tflite PICTURE OUT.png [SIZE]

The square selfie segmentation model on PICTURE (resized to 256×256, 0–1), its mask resized
bilinearly to SIZE × SIZE (default 512) and cut at 0.5: white person, black background.
Run in .ml/venv (scripts/ml/fetch.py makes it):
  .ml/venv/bin/python scripts/ml/reference_mask.py .ml/models/selfie_segmentation.tflite \
      .ml/test/astronaut.png tests/snapshots/ml/astronaut-person-mask.png
"""

import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


def main():
    model, picture, out = sys.argv[1:4]
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 512
    interpreter = Interpreter(model_path=model)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    height, width = source["shape"][1:3]
    image = Image.open(picture).convert("RGB").resize((width, height), Image.BILINEAR)
    interpreter.set_tensor(source["index"], (np.asarray(image, dtype=np.float32) / 255.0)[None])
    interpreter.invoke()
    mask = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, :, :, 0]
    big = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((size, size), Image.BILINEAR))
    Image.fromarray(np.where(big >= 0.5, 255, 0).astype(np.uint8)).save(out)
    print(f"{out}: person {float((big >= 0.5).mean()):.3f} of the picture")


if __name__ == "__main__":
    main()
