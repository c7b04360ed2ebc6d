#!/usr/bin/env python3
"""Golden fixture for emo's MDX-Net vocal separator (tests/data/mdx/).

Runs PyPI's audio-separator (the version Hallo's requirements.txt pins, 0.17.2) exactly as Hallo's
AudioProcessor does -- Separator(output_dir=..., output_single_stem="vocals", model_file_dir=...),
load_model("Kim_Vocal_2.onnx"), separate(path) -- on a stand-in ONNX model of Kim_Vocal_2's architecture
(KUIELab's TFC-TDF-U-Net v2, "ConvTDFNet", exported by torch.onnx like UVR's files) with small random weights and
the same signature: input "input" [batch, 4, 3072, 256], output "output" of the same shape.

audio-separator finds a model's parameters by the MD5 of the file in UVR's model_data json (downloaded on first
use); this script writes those lists into the model folder itself, registering the stand-in's hash with Kim_Vocal_2's
parameters (compensate 1.009, dim_f 3072, dim_t 2**8, n_fft 7680, primary stem Vocals), so nothing is downloaded.

Usage (a separate venv, not the project's; the ffmpeg CLI on PATH, as Hallo needs it):
  python3 -m venv /work/venv-sep
  /work/venv-sep/bin/pip install audio-separator==0.17.2 onnxruntime onnx safetensors numpy==1.26.4 \
      librosa==0.10.2.post1
  /work/venv-sep/bin/python scripts/golden/make_mdx_fixture.py --out tests/data/mdx

Writes into --out:
  model.onnx          the stand-in (random weights, seed 0)
  identity.onnx       an Identity graph with the same signature (emo's unit tests: separation = STFT -> iSTFT)
  mix.wav             9 s stereo 44.1 kHz 16-bit synthetic input (tones + noise bursts + a chirp): three chunks,
                      the last one partial
  vocals.wav          the file audio-separator wrote (16-bit: the full-length check, 1 LSB = 3.1e-5)
  expected.safetensors (crops only, to stay small)
      demix_crop.<s>  [2, 4096] float32: MDXSeparator.demix(mix) (compensated, before the normalisations) from
                      sample <s> (the start, both chunk seams, the end)
      demix_absmax    [1] max |demix|;  mix_absmax [1] max |mix| as demix received it (after the 0.9 peak normalisation)
      vocals_float_crop.<s> [4096, 2] float32: the stem handed to write_audio (normalised to 0.9 peak)
      spec_in_crop    [1, 4, 64, 16] float32: the first chunk's model input, bins 1024..1087, frames 100..115
                      (after the 3 low bins are zeroed)
      spec_out_crop   same crop of onnxruntime's output for the whole first chunk
      speech_16k_crop.<s> [4096] float32: what Hallo feeds wav2vec2 from that stem (`ffmpeg -y -v error -i
                      vocals.wav -ar 16000 vocals-16k.wav`, then librosa.load(sr=16000)), from sample <s>
      speech_16k_len  [1] its length
  config.json         parameters and versions
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata

import numpy as np
import torch
import torch.nn as nn

# --- the stand-in network: TFC-TDF U-Net v2 (KUIELab mdx-net's ConvTDFNet), written from its description ------


class TFC(nn.Module):
    def __init__(self, c, l, k):
        super().__init__()
        self.H = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(c, c, k, stride=1, padding=k // 2), nn.BatchNorm2d(c), nn.ReLU()) for _ in range(l)])

    def forward(self, x):
        for h in self.H:
            x = h(x)
        return x


class TFC_TDF(nn.Module):
    def __init__(self, c, l, f, k, bn, bias):
        super().__init__()
        self.tfc = TFC(c, l, k)
        self.tdf = nn.Sequential(nn.Linear(f, f // bn, bias=bias), nn.BatchNorm2d(c), nn.ReLU(),
                                 nn.Linear(f // bn, f, bias=bias), nn.BatchNorm2d(c), nn.ReLU())

    def forward(self, x):
        x = self.tfc(x)
        return x + self.tdf(x)


class ConvTDFNet(nn.Module):
    def __init__(self, dim_c=4, dim_f=3072, g=4, k=3, l=1, bn=256, num_blocks=5, bias=False):
        super().__init__()
        self.n = num_blocks // 2
        self.first_conv = nn.Sequential(nn.Conv2d(dim_c, g, 1), nn.BatchNorm2d(g), nn.ReLU())
        f, c = dim_f, g
        self.encoding_blocks, self.ds = nn.ModuleList(), nn.ModuleList()
        for _ in range(self.n):
            self.encoding_blocks.append(TFC_TDF(c, l, f, k, bn, bias))
            self.ds.append(nn.Sequential(nn.Conv2d(c, c + g, 2, stride=2), nn.BatchNorm2d(c + g), nn.ReLU()))
            f, c = f // 2, c + g
        self.bottleneck_block = TFC_TDF(c, l, f, k, bn, bias)
        self.decoding_blocks, self.us = nn.ModuleList(), nn.ModuleList()
        for _ in range(self.n):
            self.us.append(nn.Sequential(nn.ConvTranspose2d(c, c - g, 2, stride=2), nn.BatchNorm2d(c - g), nn.ReLU()))
            f, c = f * 2, c - g
            self.decoding_blocks.append(TFC_TDF(c, l, f, k, bn, bias))
        self.final_conv = nn.Sequential(nn.Conv2d(c, dim_c, 1))

    def forward(self, x):
        x = self.first_conv(x)
        x = x.transpose(-1, -2)  # [B, C, T, F]: the TDF linears act on the frequency axis
        skips = []
        for i in range(self.n):
            x = self.encoding_blocks[i](x)
            skips.append(x)
            x = self.ds[i](x)
        x = self.bottleneck_block(x)
        for i in range(self.n):
            x = self.us[i](x)
            x = x * skips[-i - 1]
            x = self.decoding_blocks[i](x)
        x = x.transpose(-1, -2)
        return self.final_conv(x)


def make_model(path, seed=0):
    torch.manual_seed(seed)
    net = ConvTDFNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics so that every BN matters
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
        # random weights give a faint stem (peak ~3e-3); scale the last conv so the stem's peak is ~0.6, below the
        # 0.9 normalisation threshold, so that the written 16-bit file still shows the compensation factor
        net.final_conv[0].weight.mul_(200.0)
        net.final_conv[0].bias.mul_(200.0)
    net.eval()
    x = torch.randn(1, 4, 3072, 256)
    torch.onnx.export(net, (x,), path, input_names=["input"], output_names=["output"], opset_version=11,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False,
                      do_constant_folding=True)


def make_identity(path):
    """A graph that returns its input: the separator is then STFT -> iSTFT, for emo's chunking unit tests."""
    import onnx
    from onnx import TensorProto, helper
    shape = ["batch", 4, 3072, 256]
    g = helper.make_graph([helper.make_node("Identity", ["input"], ["output"], name="identity")], "identity",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]), path)


def make_mix(path, sr=44100, seconds=9.0, seed=1):
    import soundfile as sf
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    voice = 0.3 * np.sin(2 * np.pi * (220 + 30 * np.sin(2 * np.pi * 3 * t)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    chirp = 0.2 * np.sin(2 * np.pi * (100 * t + 400 * t * t))
    bursts = 0.15 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.6)
    left = voice + chirp + bursts
    right = voice - 0.5 * chirp + 0.8 * bursts + 0.05 * np.sin(2 * np.pi * 60 * t)
    mix = np.stack([left, right], 1)
    sf.write(path, mix, sr, subtype="PCM_16")


def register(model_dir, model_path):
    md5 = hashlib.md5(open(model_path, "rb").read()).hexdigest()  # < 10 MB: audio-separator hashes the whole file
    checks = {k: {} for k in ("vr_download_list", "mdx_download_vip_list", "demucs_download_list", "mdx23c_download_list",
                               "mdx23c_download_vip_list", "roformer_download_list")}
    checks["mdx_download_list"] = {"MDX-Net Model: Kim Vocal 2": "Kim_Vocal_2.onnx"}
    json.dump(checks, open(os.path.join(model_dir, "download_checks.json"), "w"))
    params = {"compensate": 1.009, "mdx_dim_f_set": 3072, "mdx_dim_t_set": 8, "mdx_n_fft_scale_set": 7680,
              "primary_stem": "Vocals"}
    json.dump({md5: params}, open(os.path.join(model_dir, "mdx_model_data.json"), "w"))
    json.dump({}, open(os.path.join(model_dir, "vr_model_data.json"), "w"))
    return params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/mdx")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.environ.setdefault("PYTEST_CURRENT_TEST", "make_mdx_fixture")  # audio-separator 0.17.2 demands an ffmpeg CLI otherwise
    torch.set_num_threads(1)

    from audio_separator.separator import Separator
    from audio_separator.separator.architectures import mdx_separator
    from audio_separator.separator import common_separator
    from safetensors.numpy import save_file

    work = tempfile.mkdtemp()
    model_dir = os.path.join(work, "audio_separator")
    os.makedirs(model_dir)
    model_path = os.path.join(model_dir, "Kim_Vocal_2.onnx")
    make_model(model_path)
    params = register(model_dir, model_path)
    mix_path = os.path.join(args.out, "mix.wav")
    make_mix(mix_path)

    captured = {}
    orig_demix, orig_run, orig_write = (mdx_separator.MDXSeparator.demix, mdx_separator.MDXSeparator.run_model,
                                        common_separator.CommonSeparator.write_audio)

    def demix(self, mix, is_match_mix=False):
        if not is_match_mix:
            captured["mix"] = np.array(mix, dtype=np.float32)
        out = orig_demix(self, mix, is_match_mix)
        if not is_match_mix:
            captured["demix"] = np.array(out, dtype=np.float32)
        return out

    def run_model(self, mix, is_match_mix=False):
        if not is_match_mix and "spec_in" not in captured:
            spek = self.stft(mix.to(self.torch_device))
            spek[:, :, :3, :] *= 0
            captured["spec_in"] = spek.cpu().numpy().astype(np.float32)[:, :, 1024:1088, 100:116]
            captured["spec_out"] = np.asarray(self.model_run(spek), dtype=np.float32)[:, :, 1024:1088, 100:116]
        return orig_run(self, mix, is_match_mix)

    def write_audio(self, stem_path, stem_source):
        captured["vocals_float"] = np.array(stem_source, dtype=np.float32)
        return orig_write(self, stem_path, stem_source)

    mdx_separator.MDXSeparator.demix = demix
    mdx_separator.MDXSeparator.run_model = run_model
    common_separator.CommonSeparator.write_audio = write_audio

    out_dir = os.path.join(work, "out")
    sep = Separator(log_level=logging.WARNING, output_dir=out_dir, output_single_stem="vocals", model_file_dir=model_dir)
    sep.load_model("Kim_Vocal_2.onnx")
    outputs = sep.separate(mix_path)
    assert len(outputs) == 1, outputs
    import soundfile as sf
    written, sr = sf.read(os.path.join(out_dir, outputs[0]), dtype="int16")
    assert sr == 44100 and written.shape[1] == 2
    shutil.copy(os.path.join(out_dir, outputs[0]), os.path.join(args.out, "vocals.wav"))
    shutil.copy(model_path, os.path.join(args.out, "model.onnx"))
    make_identity(os.path.join(args.out, "identity.onnx"))

    n = captured["demix"].shape[1]
    crop = 4096
    starts = [0, 195840 - 3840 - 1000, 2 * 195840 - 3840 - 1000, n - crop]  # seams: chunk starts minus the trim
    tensors = {"spec_in_crop": captured["spec_in"], "spec_out_crop": captured["spec_out"],
               "demix_absmax": np.array([np.abs(captured["demix"]).max()], np.float32),
               "mix_absmax": np.array([np.abs(captured["mix"]).max()], np.float32)}
    for s0 in starts:
        tensors[f"demix_crop.{s0}"] = captured["demix"][:, s0:s0 + crop]
        tensors[f"vocals_float_crop.{s0}"] = captured["vocals_float"][s0:s0 + crop]
    # Hallo's next step (hallo/utils/util.py resample_audio + AudioProcessor.preprocess): ffmpeg -ar 16000 on the
    # written stem, then librosa.load(sr=16000) (mono)
    import librosa
    import subprocess
    v16 = os.path.join(work, "vocals-16k.wav")
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", os.path.join(out_dir, outputs[0]), "-ar", "16000", v16], check=True)
    speech, _ = librosa.load(v16, sr=16000)
    speech_starts = [0, len(speech) // 2, len(speech) - crop]
    for s0 in speech_starts:
        tensors[f"speech_16k_crop.{s0}"] = speech[s0:s0 + crop].astype(np.float32)
    tensors["speech_16k_len"] = np.array([len(speech)], np.int64)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(tensors, os.path.join(args.out, "expected.safetensors"))
    cfg = {
        "audio_separator": metadata.version("audio-separator"), "onnxruntime": metadata.version("onnxruntime"),
        "torch": torch.__version__, "numpy": np.__version__, "librosa": metadata.version("librosa"),
        "separator_call": "Separator(output_dir, output_single_stem='vocals', model_file_dir); load_model('Kim_Vocal_2.onnx'); separate(mix.wav)",
        "model_data": params, "mdx_params": sep.arch_specific_params["MDX"], "sample_rate": 44100,
        "normalization_threshold": 0.9, "output_file": outputs[0],
        "model": {"arch": "ConvTDFNet", "dim_c": 4, "dim_f": 3072, "dim_t": 256, "g": 4, "k": 3, "l": 1, "bn": 256,
                  "num_blocks": 5, "bias": False, "opset": 11, "seed": 0},
        "shapes": {k: list(v.shape) for k, v in tensors.items()}, "num_samples": int(n), "crop_starts": starts, "speech_starts": speech_starts,
        "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0],
        "demix_absmax": float(tensors["demix_absmax"][0]), "mix_absmax": float(tensors["mix_absmax"][0]),
    }
    json.dump(cfg, open(os.path.join(args.out, "config.json"), "w"), indent=1)
    shutil.rmtree(work)
    print(json.dumps(cfg["shapes"]))


if __name__ == "__main__":
    main()
