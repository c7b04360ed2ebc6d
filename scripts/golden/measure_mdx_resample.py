#!/usr/bin/env python3
"""Measures how far `emo separate` is from audio-separator 0.17.2 when the input is NOT 44.1 kHz (the resampler).

audio-separator loads the file with librosa.load(mono=False, sr=44100) (soxr 'HQ'); emo decodes it with libav and
resamples with libswresample's soxr engine. With tests/data/mdx/identity.onnx registered as Kim_Vocal_2 the
separation is STFT -> iSTFT, so the difference of the two written stems is the resampling difference.

  /work/venv-sep/bin/python scripts/golden/measure_mdx_resample.py --emo build/emo [--rate 48000]
  /work/venv-sep/bin/python scripts/golden/measure_mdx_resample.py --emo build/emo --input song.mp3   # the decoder
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emo", default="build/emo")
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--model", default="tests/data/mdx/identity.onnx")
    ap.add_argument("--input", help="use this audio file (e.g. an mp3) instead of generated tones")
    args = ap.parse_args()
    os.environ.setdefault("PYTEST_CURRENT_TEST", "measure")
    import soundfile as sf
    from audio_separator.separator import Separator

    work = tempfile.mkdtemp()
    sr = args.rate
    t = np.arange(int(sr * 4.0)) / sr
    rng = np.random.default_rng(3)
    left = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t) + 0.05 * rng.standard_normal(t.size)
    right = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 7000 * t) + 0.05 * rng.standard_normal(t.size)
    wav = os.path.join(work, "in.wav")
    sf.write(wav, np.stack([left, right], 1), sr, subtype="PCM_16")
    if args.input:
        wav = os.path.join(work, os.path.basename(args.input))
        shutil.copy(args.input, wav)

    mdir = os.path.join(work, "models")
    os.makedirs(mdir)
    shutil.copy(args.model, os.path.join(mdir, "Kim_Vocal_2.onnx"))
    md5 = hashlib.md5(open(os.path.join(mdir, "Kim_Vocal_2.onnx"), "rb").read()).hexdigest()
    lists = {k: {} for k in ("vr_download_list", "mdx_download_vip_list", "demucs_download_list", "mdx23c_download_list",
                              "mdx23c_download_vip_list", "roformer_download_list")}
    lists["mdx_download_list"] = {"MDX-Net Model: Kim Vocal 2": "Kim_Vocal_2.onnx"}
    json.dump(lists, open(os.path.join(mdir, "download_checks.json"), "w"))
    json.dump({md5: {"compensate": 1.009, "mdx_dim_f_set": 3072, "mdx_dim_t_set": 8, "mdx_n_fft_scale_set": 7680,
                     "primary_stem": "Vocals"}}, open(os.path.join(mdir, "mdx_model_data.json"), "w"))
    json.dump({}, open(os.path.join(mdir, "vr_model_data.json"), "w"))

    sep = Separator(log_level=logging.WARNING, output_dir=os.path.join(work, "out"), output_single_stem="vocals",
                    model_file_dir=mdir)
    sep.load_model("Kim_Vocal_2.onnx")
    ref_path = os.path.join(work, "out", sep.separate(wav)[0])
    emo_path = os.path.join(work, "emo.wav")
    subprocess.run([args.emo, "-q", "separate", "-i", wav, "-o", emo_path, "--model", os.path.join(mdir, "Kim_Vocal_2.onnx")],
                   check=True)
    ref, _ = sf.read(ref_path, dtype="int16")
    got, _ = sf.read(emo_path, dtype="int16")
    n = min(len(ref), len(got))
    d = np.abs(ref[:n].astype(np.int64) - got[:n].astype(np.int64))
    inner = d[2000:n - 2000]
    print(json.dumps({"input": args.input or "tones", "rate": None if args.input else sr, "samples_ref": len(ref), "samples_emo": len(got), "max_lsb": int(d.max()),
                      "max_lsb_inner": int(inner.max()), "mean_lsb": float(d.mean()),
                      "max_abs": float(d.max()) / 32767, "peak_ref": int(np.abs(ref).max())}))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
