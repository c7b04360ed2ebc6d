// Vocal separation as Hallo runs it: audio-separator 0.17.2 (the version Hallo's requirements.txt pins) with
// UVR's MDX-Net model Kim_Vocal_2.onnx, Separator's defaults (44.1 kHz, normalisation threshold 0.9, MDX params
// hop_length 1024, segment_size 256, overlap 0.25, batch_size 1, enable_denoise false) and
// output_single_stem="vocals". The network runs through emo's own ONNX interpreter on libtorch.
// Behaviour, parameters and the remaining differences: docs/audio.md. Implementation: src/audio/mdx_*.cpp.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace emo::audio {

// audio-separator's MDX parameters. The model-specific ones (compensate, dim_f, dim_t, n_fft) come from UVR's
// model data, which audio-separator finds by the file's MD5; the defaults are Kim_Vocal_2's entry.
struct MdxParams {
  // model data (Kim_Vocal_2)
  double compensate = 1.009;
  int64_t dim_f = 3072;          // mdx_dim_f_set: frequency bins fed to the network
  int64_t dim_t = 256;           // 2 ** mdx_dim_t_set: STFT frames per chunk the network was exported for
  int64_t n_fft = 7680;          // mdx_n_fft_scale_set
  // Separator(mdx_params=...) defaults
  int64_t hop_length = 1024;
  int64_t segment_size = 256;    // STFT frames per chunk
  double overlap = 0.25;
  int64_t batch_size = 1;        // no effect on the result (each chunk is one batch)
  bool enable_denoise = false;   // run the net on -spec and spec and average
  // Separator() defaults
  int sample_rate = 44100;
  double normalization_threshold = 0.9;
};

// Called before each chunk with (index, count): progress reports, and cancellation (throw from it to stop).
using ChunkCallback = std::function<void(int64_t chunk, int64_t chunks)>;

class MdxSeparator {
 public:
  // `onnx_path`: an MDX-Net ONNX file (input [batch, 4, dim_f, dim_t], output the same). Throws ModelError when the
  // file is unreadable, uses an operator the interpreter lacks, or its input shape contradicts `params`.
  static MdxSeparator load(const std::string& onnx_path, const MdxParams& params = {}, const std::string& device = "cpu");
  MdxSeparator(MdxSeparator&&) noexcept;
  MdxSeparator& operator=(MdxSeparator&&) noexcept;
  ~MdxSeparator();

  const MdxParams& params() const;
  const std::string& path() const;

  // MDXSeparator.separate on a mix as librosa.load(mono=False, sr=44100) returns it: [2, n] (or [n] / [1, n],
  // duplicated to stereo as prepare_mix does) float32 at params().sample_rate. Returns the vocals stem [2, n] float32
  // exactly as audio-separator hands it to write_audio (peak-normalised to the threshold when above it, the mix
  // likewise before demixing). Throws InputError when the mix is all zeros (audio-separator's "empty" check).
  at::Tensor separate(const at::Tensor& mix, const ChunkCallback& on_chunk = {}) const;

  // The steps, exposed for tests:
  // [2, n] -> [2, n] overlap-added, trimmed, compensated
  at::Tensor demix(const at::Tensor& mix, const ChunkCallback& on_chunk = {}) const;
  at::Tensor run_model(const at::Tensor& chunks) const;  // [B, 2, chunk] -> [B, 2, chunk] (STFT, net, iSTFT)
  at::Tensor stft(const at::Tensor& chunks) const;       // [B, 2, T] -> [B, 4, dim_f, frames]
  at::Tensor istft(const at::Tensor& spec) const;        // [B, 4, F<=n_fft/2+1, frames] -> [B, 2, T]
  at::Tensor net(const at::Tensor& spec) const;          // the ONNX graph: [B, 4, dim_f, frames]

  struct Impl;

 private:
  explicit MdxSeparator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// audio-separator writes the stem with (x * 32767).astype(int16) (truncation toward zero) as a 16-bit WAV.
std::vector<int16_t> stem_to_int16(const at::Tensor& stem);  // [2, n] -> interleaved [n * 2]

// Writes interleaved stereo 16-bit samples as a WAV file under a temporary name, renamed onto `path` when complete.
// Throws OutputError naming the file.
void write_stem_wav(const std::string& path, const std::vector<int16_t>& interleaved, int sample_rate);

// Hallo's chain after the separator: `ffmpeg -i vocals.wav -ar 16000 vocals-16k.wav` (libswresample, 16-bit in
// and out), then librosa.load(sr=16000) (int16 / 32768, mean of the two channels). Interleaved stereo int16 in.
std::vector<float> hallo_vocals_16k(const std::vector<int16_t>& stem_interleaved, int sample_rate);

// Whole-file helpers (decode with libav, as librosa.load(mono=False, sr=44100) would be given the file; see
// docs/audio.md for the decoder/resampler differences).
at::Tensor load_mix(const std::string& path, int sample_rate = 44100, double max_duration_s = 3600.0);  // [2, n]

// Finds the separator of a model folder: `<dir>/audio_separator/Kim_Vocal_2.onnx` (Hallo's layout), `dir` itself when
// it is an .onnx file, or `<dir>/Kim_Vocal_2.onnx`. Returns "" when none exists.
std::string find_separator_model(const std::string& dir_or_file);

}  // namespace emo::audio
