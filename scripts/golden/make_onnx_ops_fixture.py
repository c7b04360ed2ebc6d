#!/usr/bin/env python3
"""Operator fixture for emo's ONNX interpreter (tests/data/onnx_ops/): small graphs, written with onnx.helper,
that use the operators a torch.onnx export of an MDX-Net model may contain besides the ones the stand-in
Kim_Vocal_2 uses (Reshape/Shape/Gather/Unsqueeze/Concat chains, Slice, Gemm, Pad, asymmetric Conv pads, grouped and
padded ConvTranspose, Softmax, Split, Sigmoid/Tanh/LeakyRelu/Clip, ReduceMean, InstanceNormalization, Cast,
Constant, Div/Sub/Pow/Sqrt, Flatten, Squeeze), one graph per opset family (11 and 13, where Squeeze/Unsqueeze/Split
moved their axes from attributes to inputs). Expected outputs come from onnxruntime (CPU).

  /work/venv-sep/bin/python scripts/golden/make_onnx_ops_fixture.py --out tests/data/onnx_ops
"""
import argparse
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def graph(opset, rng):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 6, 8])
    inits = [
        const("w_conv", rng.standard_normal((6, 2, 3, 2)).astype(np.float32)),  # group 2
        const("b_conv", rng.standard_normal(6).astype(np.float32)),
        const("w_convt", rng.standard_normal((6, 2, 3, 3)).astype(np.float32)),  # [C_in, C_out/group, k, k], group 3
        const("b_convt", rng.standard_normal(6).astype(np.float32)),
        const("gemm_b", rng.standard_normal((5, 12)).astype(np.float32)),
        const("gemm_c", rng.standard_normal(5).astype(np.float32)),
        const("in_scale", rng.uniform(0.5, 1.5, 6).astype(np.float32)),
        const("in_bias", rng.standard_normal(6).astype(np.float32)),
        const("two", np.array(2.0, np.float32)),
        const("minus1", np.array([-1], np.int64)),
        const("idx", np.array([0, 2], np.int64)),
        const("starts", np.array([1, -5], np.int64)),
        const("ends", np.array([1000, -1], np.int64)),
        const("axes", np.array([2, 3], np.int64)),
        const("steps", np.array([2, 1], np.int64)),
        const("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
        const("ax0", np.array([0], np.int64)),
        const("ax1", np.array([1], np.int64)),
        const("split", np.array([2, 4], np.int64)),
    ]
    N = helper.make_node
    sq_axes = {"axes": [1]} if opset < 13 else {}
    sq_in = [] if opset < 13 else ["ax1"]
    nodes = [
        # asymmetric-pad grouped Conv, LeakyRelu
        N("Conv", ["x", "w_conv", "b_conv"], ["c"], pads=[1, 0, 2, 1], strides=[1, 2], group=2, dilations=[1, 1]),
        N("LeakyRelu", ["c"], ["c1"], alpha=0.2),
        # ConvTranspose with pads and output_padding, group 3
        N("ConvTranspose", ["c1", "w_convt", "b_convt"], ["ct"], strides=[2, 2], pads=[1, 1, 1, 1],
          output_padding=[1, 1], group=3),
        N("InstanceNormalization", ["ct", "in_scale", "in_bias"], ["inorm"], epsilon=1e-5),
        N("Sigmoid", ["inorm"], ["sig"]),
        # Slice with negative starts/ends, steps
        N("Slice", ["sig", "starts", "ends", "axes", "steps"], ["sl"]),
        N("Pad", ["sl", "pads"], ["pd"], mode="reflect"),
        N("ReduceMean", ["pd"], ["rm"], axes=[3], keepdims=0),  # [2, 6, H]
        # dynamic reshape chain as torch exports x.view(b, -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape
        N("Shape", ["x"], ["shp"]),
        N("Gather", ["shp", "ax0"], ["b"], axis=0),
        N("Concat", ["b", "minus1"], ["newshape"], axis=0),
        N("Reshape", ["x", "newshape"], ["flat"]),  # [2, 192]
        N("Flatten", ["x"], ["flat2"], axis=2),  # [8, 48]
        N("Gather", ["x", "idx"], ["gx"], axis=1),  # [2, 2, 6, 8]
        N("Transpose", ["gx"], ["gt"], perm=[0, 2, 3, 1]),  # [2, 6, 8, 2]
        N("Softmax", ["gt"], ["sm"], axis=-1),
        N("Split", ["x"] + ([] if opset < 13 else ["split"]), ["s1", "s2"], axis=2, **({"split": [2, 4]} if opset < 13 else {})),
        N("Tanh", ["s1"], ["t1"]),
        N("Clip", ["s2"] + ([] if opset < 11 else []), ["cl"], **({} if opset >= 11 else {"min": -0.5, "max": 0.5})),
        N("Pow", ["t1", "two"], ["p1"]),
        N("Sqrt", ["p1"], ["sq"]),
        N("Sub", ["sq", "t1"], ["d1"]),
        N("Div", ["d1", "two"], ["dv"]),
        N("Unsqueeze", ["dv"] + sq_in, ["un"], **sq_axes),
        N("Squeeze", ["un"] + sq_in, ["sqz"], **sq_axes),
        N("Cast", ["sqz"], ["cst"], to=TensorProto.FLOAT),
        N("Constant", [], ["k"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
        N("Mul", ["cst", "k"], ["out_a"]),
        # Gemm on the first 12 features of the flattened input
        N("Slice", ["flat", "ax0", "twelve", "ax1"], ["f12"]),
        N("Gemm", ["f12", "gemm_b", "gemm_c"], ["gm"], transB=1, alpha=0.5, beta=2.0),
        N("Relu", ["gm"], ["out_b"]),
    ]
    inits.append(const("twelve", np.array([12], np.int64)))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
            for n in ["rm", "flat2", "sm", "cl", "out_a", "out_b", "ct"]]
    g = helper.make_graph(nodes, f"ops{opset}", [x], outs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    # (no onnx.checker: it wants output shapes; onnxruntime validates the graph when it loads it)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/onnx_ops")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 8)).astype(np.float32)
    info = {}
    for opset in (11, 13):
        m = graph(opset, rng)
        path = os.path.join(args.out, f"ops{opset}.onnx")
        onnx.save(m, path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        res = sess.run(None, {"x": x})
        tensors = {"input.x": x}
        for n, r in zip(names, res):
            tensors[f"output.{n}"] = np.ascontiguousarray(r.astype(np.float32))
        save_file(tensors, os.path.join(args.out, f"ops{opset}.safetensors"))
        info[f"ops{opset}"] = {n: list(r.shape) for n, r in zip(names, res)}
    info["onnxruntime"] = ort.__version__
    info["onnx"] = onnx.__version__
    json.dump(info, open(os.path.join(args.out, "config.json"), "w"), indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
