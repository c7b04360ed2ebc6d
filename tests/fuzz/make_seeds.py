#!/usr/bin/env python3
"""Writes the hand-made seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (valid and near-valid
inputs, each a few hundred bytes at most). Needs torch (the project's .venv) for the .pth seeds:
    .venv/bin/python tests/fuzz/make_seeds.py
The seeds are committed; re-running rewrites the seed-* files and leaves crash-* regression inputs alone."""
import io, json, os, struct, sys, zipfile
from collections import OrderedDict

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- safetensors ----
def st(header, data=b"", pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

put("safetensors", "valid-f32", st({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(range(16))))
put("safetensors", "valid-two-meta", st({"__metadata__": {"format": "pt"},
                                          "w": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
                                          "b": {"dtype": "I64", "shape": [], "data_offsets": [6, 14]}}, bytes(14)))
put("safetensors", "valid-empty-tensor", st({"e": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [0, 0]}}))
put("safetensors", "valid-bool-u8", st({"m": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]},
                                        "u": {"dtype": "U8", "shape": [1, 1, 1], "data_offsets": [2, 3]}}, b"\x01\x00\x07"))
put("safetensors", "bad-overlap", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, bytes(8)))
put("safetensors", "bad-truncated", st({"a": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}, bytes(8)))
put("safetensors", "bad-hlen", struct.pack("<Q", 1 << 40) + b"{}")
put("safetensors", "bad-shape-overflow", st({"a": {"dtype": "F32", "shape": [1 << 62, 1 << 62], "data_offsets": [0, 0]}}))
put("safetensors", "bad-not-object", st([1, 2, 3]))
put("safetensors", "empty-header", st({}))

# ---- .pth (torch.save zip and legacy) and raw pickles ----
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    def saved(obj, legacy=False):
        b = io.BytesIO()
        torch.save(obj, b, _use_new_zipfile_serialization=not legacy)
        return b.getvalue()
    sd = OrderedDict([("w", torch.arange(6, dtype=torch.float32).reshape(2, 3)), ("b", torch.ones(2, dtype=torch.float16))])
    put("pth", "zip-state-dict", saved(sd))
    put("pth", "legacy-state-dict", saved(sd, legacy=True))
    t = torch.arange(8, dtype=torch.int64)
    put("pth", "zip-views", saved({"state_dict": OrderedDict([("v", t[2:6]), ("s", t.view(2, 4).t())])}))
    put("pth", "zip-nested-epoch", saved({"epoch": 3, "module": OrderedDict([("x", torch.zeros(1, dtype=torch.bfloat16))])}))
    z = saved(sd)
    put("pth", "zip-truncated", z[: len(z) // 2])
    put("pth", "legacy-truncated", saved(sd, legacy=True)[:-5])
    # The pickle program inside the zip on its own, for the pickle target.
    with zipfile.ZipFile(io.BytesIO(z)) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")][0]
        put("pickle", "state-dict", zf.read(pkl))
    with zipfile.ZipFile(io.BytesIO(saved({"state_dict": OrderedDict([("v", t[2:6])])}))) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")][0]
        put("pickle", "nested-view", zf.read(pkl))
import pickle as pk
put("pickle", "plain-dict", pk.dumps({"a": [1, 2.5, "x", None, True, (1, 2)], "b": b"\x00\x01"}, protocol=2))
put("pickle", "proto4-dict", pk.dumps({"k" * 40: list(range(20)), "n": -123456789012}, protocol=4))
put("pickle", "memo", b"\x80\x02]q\x00(h\x00h\x00e.")  # a list holding itself twice
put("pickle", "global-refused", b"\x80\x02cos\nsystem\nq\x00.")
put("pickle", "truncated", pk.dumps([1, 2, 3], protocol=2)[:-2])

# ---- ONNX (protobuf wire format) ----
def varint(v):
    b = bytearray()
    while True:
        x = v & 0x7F
        v >>= 7
        if v:
            b.append(x | 0x80)
        else:
            b.append(x)
            return bytes(b)

def fld(n, payload):  # length-delimited
    return varint((n << 3) | 2) + varint(len(payload)) + payload

def fvar(n, v):
    return varint(n << 3) + varint(v)

def dim(v):
    return fld(1, fvar(1, v) if isinstance(v, int) else fld(2, v.encode()))

def value_info(name, dims):
    shape = b"".join(dim(d) for d in dims)
    tensor = fvar(1, 1) + fld(2, shape)
    return fld(1, name.encode()) + fld(2, fld(1, tensor))

def model(inputs, outputs, nodes=(), inits=()):
    g = b"".join(fld(1, fld(3, n.encode())) for n in nodes)
    g += b"".join(fld(5, fld(8, i.encode())) for i in inits)
    g += b"".join(fld(11, value_info(n, d)) for n, d in inputs)
    g += b"".join(fld(12, value_info(n, d)) for n, d in outputs)
    return fvar(1, 7) + fld(7, g)

put("onnx", "scrfd-like", model([("input.1", [1, 3, "h", "w"])], [("448", [1, 12800, 1]), ("471", [1, 12800, 4])],
                                nodes=["Conv_0", "Relu_1"]))
put("onnx", "fixed-dims", model([("data", [1, 3, 192, 192])], [("fc1", [1, 212])], nodes=["Conv_0"]))
put("onnx", "initializer-input", model([("w", [3]), ("x", [1, 3, 0, 0])], [("y", [1])], inits=["w"]))
put("onnx", "no-graph", fvar(1, 7))
put("onnx", "truncated", model([("x", [1, 3, "h", "w"])], [("y", [1])])[:-3])

# ---- batch manifests ----
put("manifest_jsonl", "two-jobs", '{"image": "a.png", "audio": "a.wav", "output": "a.mp4"}\n'
    '# comment\n\n{"image": "/abs/b.jpg", "audio": "b.m4a", "output": "out/b.mkv", "steps": 20, "cfg_scale": 3.5, "seed": 7}\n')
put("manifest_jsonl", "overrides", '{"image":"x.png","audio":"x.wav","output":"x.mp4","width":512,"height":512,"fps":25,'
    '"pose_weight":1.0,"face_weight":1.0,"lip_weight":1.0,"crf":18,"crop":true,"paste_back":false,"require_face":true,'
    '"max_audio_seconds":30.5,"speed":1.0,"cfg-scale":2}\n')
put("manifest_jsonl", "bad-lines", '{"image":"x.png"}\n{"image":"a","audio":"b","output":"c.avi"}\n[1,2]\n{"steps":"ten"}\n'
    '{"image":"a","audio":"b","output":"d.mp4","width":520,"steps":-3}\n')
put("manifest_jsonl", "duplicate-output", '{"image":"a","audio":"b","output":"o.mp4"}\n{"image":"c","audio":"d","output":"./o.mp4"}\n')
put("manifest_csv", "two-jobs", "image,audio,output,steps,seed\na.png,a.wav,a.mp4,20,1\n\"b c.png\",\"b,\"\"q\"\".wav\",out/b.mkv,,2\n")
put("manifest_csv", "overrides", "image,audio,output,cfg-scale,width,crop,paste_back,max_audio_seconds\nx.png,x.wav,x.mp4,3.5,256,true,0,12\n")
put("manifest_csv", "bad", "image,audio,output,bogus\na,b,c.mp4,1\na,b\n\"unterminated,b,c.mp4\n")
put("manifest_csv", "crlf-comment", "# header comment\r\nimage,audio,output\r\na.png,a.wav,a.mp4\r\n")

# ---- emo.json / config.json ----
put("model_config", "emo-preset", json.dumps({"preset": "emo", "steps": 30, "fps": 30, "width": 512, "height": 512,
                                               "scheduler": {"beta_schedule": "linear"}}))
put("model_config", "hallo-paths", json.dumps({"preset": "hallo", "paths": {"net": "hallo/net.pth", "vae": "sd-vae-ft-mse"},
                                                "unet_additional_kwargs": {"use_audio_module": True}}))
put("model_config", "bad-types", json.dumps({"preset": 3, "clip_frames": "x", "paths": {"net": 5}, "scheduler": [1]}))
put("model_config", "wav2vec2-config", json.dumps({"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                                                    "conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
                                                    "conv_stride": [5, 2, 2, 2, 2, 2, 2], "feat_extract_norm": "group"}))
put("model_config", "ddim-config", json.dumps({"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                                "beta_schedule": "scaled_linear", "prediction_type": "v_prediction",
                                                "timestep_spacing": "trailing", "rescale_betas_zero_snr": True}))
put("model_config", "not-json", "{\"preset\": ")
print("seeds written under", out)
