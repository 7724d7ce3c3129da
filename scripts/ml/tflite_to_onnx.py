#!/usr/bin/env python3
"""Converts the MediaPipe TFLite models the ML layers use into ONNX:
tflite_to_onnx.py IN OUT [--outputs NAME,NAME]  (--outputs: keep only these, and what they need).

`tflite2onnx` crashes on these models and `tf2onnx` needs TensorFlow, so this covers exactly the
operators they use (float16 weights behind DEQUANTIZE, sparse weights behind DENSIFY, MediaPipe's
custom `Convolution2DTransposeBias`) over the `tflite` flatbuffer reader and the `onnx` package.
Every shape in these models is static, so padding is made explicit here.

Layout: the ONNX model keeps TFLite's NHWC inputs and outputs (so it can be compared with the
TFLite runtime tensor for tensor), and runs NCHW inside: one Transpose after each input, one
before each 4-D output and around the few operators whose meaning depends on the layout.
"""

import struct
import sys

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
TFLITE_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


def options(op, cls):
    table = op.BuiltinOptions()
    o = cls()
    o.Init(table.Bytes, table.Pos)
    return o


def densify(shape, sparsity, values):
    """TFLite's sparse-to-dense walk (FormatConverter::SparseToDense) for unblocked tensors."""
    if sparsity.BlockMapLength():
        raise ValueError("blocked sparse tensors are not used by these models")
    order = sparsity.TraversalOrderAsNumpy().tolist()
    levels = []
    for i in range(sparsity.DimMetadataLength()):
        d = sparsity.DimMetadata(i)
        if d.Format() == 0:
            levels.append(("dense", d.DenseSize(), None, None))
        else:
            vectors = []
            for kind, table in ((d.ArraySegmentsType(), d.ArraySegments()), (d.ArrayIndicesType(), d.ArrayIndices())):
                cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
                v = cls()
                v.Init(table.Bytes, table.Pos)
                vectors.append(v.ValuesAsNumpy().astype(np.int64))
            levels.append(("csr", None, vectors[0], vectors[1]))
    dense = np.zeros(shape, dtype=values.dtype)
    # Walk level by level with every (value position, coordinate) pair at once.
    positions = np.zeros(1, dtype=np.int64)
    coords = np.zeros((1, len(shape)), dtype=np.int64)
    for level, (fmt, size, segments, indices) in enumerate(levels):
        dim = order[level]
        if fmt == "dense":
            positions = (positions[:, None] * size + np.arange(size)[None, :]).reshape(-1)
            coords = np.repeat(coords, size, axis=0)
            coords[:, dim] = np.tile(np.arange(size), len(coords) // size)
        else:
            starts, ends = segments[positions], segments[positions + 1]
            counts = ends - starts
            parent = np.repeat(np.arange(len(positions)), counts)
            positions = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(starts) else positions[:0]
            coords = coords[parent].copy()
            coords[:, dim] = indices[positions]
    dense[tuple(coords.T)] = values[positions]
    return dense


class Converter:
    def __init__(self, buf):
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        if self.model.SubgraphsLength() != 1:
            raise ValueError("only single-subgraph models are supported")
        self.graph = self.model.Subgraphs(0)
        self.nodes = []
        self.initializers = []
        self.constants = {}  # tensor index -> numpy array (TFLite layout)
        self.names = {}  # tensor index -> ONNX value name holding it (NCHW when 4-D)
        self.counter = 0

    def tensor(self, i):
        return self.graph.Tensors(i)

    def shape(self, i):
        return self.tensor(i).ShapeAsNumpy().tolist() if self.tensor(i).ShapeLength() else []

    def fresh(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def constant_of(self, i):
        if i in self.constants:
            return self.constants[i]
        t = self.tensor(i)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = TFLITE_DTYPES[t.Type()]
        values = np.frombuffer(data.tobytes(), dtype=dtype)
        if t.Sparsity() is not None:
            array = densify(self.shape(i), t.Sparsity(), values)
        else:
            array = values.reshape(self.shape(i))
        self.constants[i] = array
        return array

    def initializer(self, array, hint):
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type, inputs, hint, **attrs):
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def value(self, i):
        """The ONNX name of tensor i; constants become initializers (4-D ones in NCHW)."""
        if i in self.names:
            return self.names[i]
        array = self.constant_of(i)
        if array is None:
            raise ValueError(f"tensor {self.tensor(i).Name()} is used before it is made")
        if array.ndim == 4:
            array = array.transpose(NHWC_TO_NCHW)
        if array.dtype == np.float16:
            array = array.astype(np.float32)
        self.names[i] = self.initializer(array, "const")
        return self.names[i]

    def per_channel(self, i):
        """A per-channel operand of a 4-D NCHW operation (shape [C] or [1,1,1,C] in TFLite)."""
        array = self.constant_of(i)
        if array is not None and array.ndim in (1, 4) and array.size == array.shape[-1] and array.ndim != 0:
            c = array.reshape(-1).astype(np.float32)
            return self.initializer(c.reshape(1, -1, 1, 1), "chan")
        return self.value(i)

    def activation(self, name, fused):
        if fused == 0:
            return name
        if fused == 1:
            return self.node("Relu", [name], "relu")
        if fused == 3:
            return self.node("Clip", [name, self.initializer(np.float32(0), "lo"), self.initializer(np.float32(6), "hi")], "relu6")
        raise ValueError(f"fused activation {fused} is not supported")

    @staticmethod
    def same_pads(in_hw, kernel, strides, dilations):
        pads_begin, pads_end = [], []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads_begin.append(total // 2)
            pads_end.append(total - total // 2)
        return pads_begin + pads_end

    def conv_pads(self, padding, in_hw, kernel, strides, dilations):
        return self.same_pads(in_hw, kernel, strides, dilations) if padding == 0 else [0, 0, 0, 0]

    def convert_op(self, op, name):
        ins = [int(x) for x in op.InputsAsNumpy()]
        outs = [int(x) for x in op.OutputsAsNumpy()]
        out_shape = self.shape(outs[0])
        hint = name.lower()

        if name == "DEQUANTIZE" or name == "DENSIFY":
            array = self.constant_of(ins[0])
            if array is None:
                raise ValueError(f"{name} of a computed tensor is not supported")
            if name == "DEQUANTIZE":
                array = array.astype(np.float32)
            self.constants[outs[0]] = array
            return

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x = self.value(ins[0])
            weight = self.constant_of(ins[1]).astype(np.float32)
            in_shape = self.shape(ins[0])
            if name == "CONV_2D":
                o = options(op, tflite.Conv2DOptions)
                w = weight.transpose(0, 3, 1, 2)  # OHWI -> OIHW
                group = 1
            else:
                o = options(op, tflite.DepthwiseConv2DOptions)
                w = weight.transpose(3, 0, 1, 2)  # 1HW(C*M) -> (C*M)1HW
                group = in_shape[3]
            strides = [o.StrideH(), o.StrideW()]
            dilations = [o.DilationHFactor(), o.DilationWFactor()]
            kernel = list(w.shape[2:])
            inputs = [x, self.initializer(w, "w")]
            if len(ins) > 2 and ins[2] >= 0:
                inputs.append(self.initializer(self.constant_of(ins[2]).astype(np.float32), "b"))
            y = self.node(
                "Conv", inputs, hint, kernel_shape=kernel, strides=strides, dilations=dilations, group=group,
                pads=self.conv_pads(o.Padding(), in_shape[1:3], kernel, strides, dilations),
            )
            self.names[outs[0]] = self.activation(y, o.FusedActivationFunction())
            return

        if name == "CUSTOM":
            code = self.model.OperatorCodes(op.OpcodeIndex()).CustomCode().decode()
            if code != "Convolution2DTransposeBias":
                raise ValueError(f"custom operator {code} is not supported")
            # MediaPipe packs TfLiteTransposeConvParams as raw bytes: padding, stride_w, stride_h.
            padding, stride_w, stride_h = struct.unpack("<3i", op.CustomOptionsAsNumpy().tobytes()[:12])
            weight = self.constant_of(ins[1]).astype(np.float32)  # O H W I
            w = weight.transpose(3, 0, 1, 2)  # -> I O H W
            in_shape = self.shape(ins[0])
            kernel = list(weight.shape[1:3])
            strides = [stride_h, stride_w]
            # Output size is input × stride (SAME); the excess of the full transposed conv is cut
            # at the end, as TFLite's transpose conv does.
            pads = [0, 0, 0, 0]
            for axis in range(2):
                full = (in_shape[1 + axis] - 1) * strides[axis] + kernel[axis]
                total = max(full - out_shape[1 + axis], 0)
                pads[axis] = total // 2
                pads[axis + 2] = total - total // 2
            bias = self.constant_of(ins[2]).astype(np.float32)
            self.names[outs[0]] = self.node(
                "ConvTranspose", [self.value(ins[0]), self.initializer(w, "w"), self.initializer(bias, "b")], hint,
                kernel_shape=kernel, strides=strides, pads=pads,
            )
            return

        if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            o = options(op, tflite.Pool2DOptions)
            kernel = [o.FilterHeight(), o.FilterWidth()]
            strides = [o.StrideH(), o.StrideW()]
            pads = self.conv_pads(o.Padding(), self.shape(ins[0])[1:3], kernel, strides, [1, 1])
            op_type = "AveragePool" if name == "AVERAGE_POOL_2D" else "MaxPool"
            attrs = dict(kernel_shape=kernel, strides=strides, pads=pads)
            if op_type == "AveragePool":
                attrs["count_include_pad"] = 0  # TFLite averages over the real pixels only
            y = self.node(op_type, [self.value(ins[0])], hint, **attrs)
            self.names[outs[0]] = self.activation(y, o.FusedActivationFunction())
            return

        if name == "MEAN":
            o = options(op, tflite.ReducerOptions)
            axes = [int(a) for a in self.constant_of(ins[1]).reshape(-1)]
            rank = len(self.shape(ins[0]))
            if rank == 4:
                axes = [NHWC_TO_NCHW.index(a % 4) for a in axes]
            if not o.KeepDims() and rank == 4:
                raise ValueError("MEAN without keep_dims on a 4-D tensor is not supported")
            self.names[outs[0]] = self.node("ReduceMean", [self.value(ins[0])], hint, axes=axes, keepdims=int(o.KeepDims()))
            return

        if name in ("ADD", "MUL"):
            o = options(op, tflite.AddOptions if name == "ADD" else tflite.MulOptions)
            four_d = len(out_shape) == 4
            operands = []
            for i in ins:
                if four_d and len(self.shape(i)) != 4:
                    operands.append(self.per_channel(i))
                elif four_d and self.constant_of(i) is not None and self.constant_of(i).size == self.shape(i)[-1]:
                    operands.append(self.per_channel(i))
                else:
                    operands.append(self.value(i))
            y = self.node("Add" if name == "ADD" else "Mul", operands, hint)
            self.names[outs[0]] = self.activation(y, o.FusedActivationFunction())
            return

        if name in ("RELU", "LOGISTIC", "HARD_SWISH"):
            op_type = {"RELU": "Relu", "LOGISTIC": "Sigmoid", "HARD_SWISH": "HardSwish"}[name]
            self.names[outs[0]] = self.node(op_type, [self.value(ins[0])], hint)
            return

        if name == "RESIZE_BILINEAR":
            o = options(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners():
                mode = "align_corners"
            elif o.HalfPixelCenters():
                mode = "half_pixel"
            else:
                mode = "asymmetric"
            in_shape = self.shape(ins[0])
            sizes = np.array([out_shape[0], in_shape[3], out_shape[1], out_shape[2]], dtype=np.int64)
            self.names[outs[0]] = self.node(
                "Resize", [self.value(ins[0]), "", "", self.initializer(sizes, "sizes")], hint,
                mode="linear", coordinate_transformation_mode=mode,
            )
            return

        if name == "PAD":
            paddings = self.constant_of(ins[1]).astype(np.int64)  # [rank, 2] in NHWC
            if len(self.shape(ins[0])) == 4:
                paddings = paddings[NHWC_TO_NCHW]
            pads = np.concatenate([paddings[:, 0], paddings[:, 1]])
            self.names[outs[0]] = self.node("Pad", [self.value(ins[0]), self.initializer(pads, "pads")], hint)
            return

        if name == "DEPTH_TO_SPACE":
            o = options(op, tflite.DepthToSpaceOptions)
            # TensorFlow's order, in NCHW, is ONNX's DCR.
            self.names[outs[0]] = self.node("DepthToSpace", [self.value(ins[0])], hint, blocksize=o.BlockSize(), mode="DCR")
            return

        if name == "RESHAPE":
            x = self.value(ins[0])
            if len(self.shape(ins[0])) == 4:
                x = self.node("Transpose", [x], "to_nhwc", perm=NCHW_TO_NHWC)
            y = self.node("Reshape", [x, self.initializer(np.array(out_shape, dtype=np.int64), "shape")], hint)
            if len(out_shape) == 4:
                y = self.node("Transpose", [y], "to_nchw", perm=NHWC_TO_NCHW)
            self.names[outs[0]] = y
            return

        if name == "CONCATENATION":
            o = options(op, tflite.ConcatenationOptions)
            axis = o.Axis() % len(out_shape)
            if len(out_shape) == 4:
                axis = NHWC_TO_NCHW.index(axis)
            y = self.node("Concat", [self.value(i) for i in ins], hint, axis=axis)
            self.names[outs[0]] = self.activation(y, o.FusedActivationFunction())
            return

        raise ValueError(f"operator {name} is not supported")

    def convert(self, keep=None):
        g = self.graph
        inputs, outputs = [], []
        for k in range(g.InputsLength()):
            i = g.Inputs(k)
            name = g.Tensors(i).Name().decode()
            shape = self.shape(i)
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
            self.names[i] = self.node("Transpose", [name], "input_nchw", perm=NHWC_TO_NCHW) if len(shape) == 4 else name
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            self.convert_op(op, "CUSTOM" if code == tflite.BuiltinOperator.CUSTOM else tflite.opcode2name(code))
        for k in range(g.OutputsLength()):
            i = g.Outputs(k)
            name = g.Tensors(i).Name().decode()
            shape = self.shape(i)
            perm = NCHW_TO_NHWC if len(shape) == 4 else list(range(len(shape)))
            self.nodes.append(helper.make_node("Transpose", [self.names[i]], [name], perm=perm))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        nodes, initializers = self.nodes, self.initializers
        if keep:
            # Only what the kept outputs need: fewer nodes run and a smaller file.
            missing = set(keep) - {o.name for o in outputs}
            if missing:
                raise ValueError(f"no outputs {sorted(missing)}")
            outputs = [o for o in outputs if o.name in keep]
            needed = {o.name for o in outputs}
            kept = []
            for node in reversed(nodes):
                if any(o in needed for o in node.output):
                    kept.append(node)
                    needed.update(i for i in node.input if i)
            nodes = kept[::-1]
            initializers = [t for t in initializers if t.name in needed]
        graph = helper.make_graph(nodes, "converted", inputs, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="streamlib tflite_to_onnx")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def main():
    args = sys.argv[1:]
    keep = None
    if len(args) == 4 and args[2] == "--outputs":
        keep = args[3].split(",")
        args = args[:2]
    if len(args) != 2:
        sys.exit("usage: tflite_to_onnx.py IN.tflite OUT.onnx [--outputs NAME,NAME]")
    with open(args[0], "rb") as f:
        model = Converter(f.read()).convert(keep)
    onnx.save(model, args[1])


if __name__ == "__main__":
    main()
