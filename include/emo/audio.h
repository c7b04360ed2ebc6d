// Audio input: decode any container/codec FFmpeg reads into float samples, and turn 16 kHz speech into
// Hallo's per-frame wav2vec2 embeddings. Implementation in src/audio/.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace emo::audio {

// Where the decoded samples came from: enough to re-open the original stream when muxing.
struct AudioSource {
  std::string path;
  int stream_index = -1;       // index of the audio stream inside the container
  std::string codec;           // e.g. "mp3", "aac", "pcm_s16le"
  int sample_rate = 0;         // original sample rate (Hz)
  int channels = 0;            // original channel count
  double container_duration_s = 0.0;  // as the container declares it (0 when unknown)
};

struct DecodeOptions {
  int sample_rate = 16000;         // output rate
  int channels = 1;                // output channels; 1 = average of the source channels (as librosa's mono=True);
                                   // 0 = keep the source channel count; 2 = stereo via libswresample's matrix
  double max_duration_s = 3600.0;  // longer inputs are refused (InputError); <= 0 disables the check
  std::string resampler;           // libswresample engine: "" = its default ("swr"), "soxr" = libsoxr (librosa's soxr_hq)
};

struct DecodedAudio {
  AudioSource source;
  int sample_rate = 0;
  std::vector<std::vector<float>> planes;  // one vector per output channel (planar float)
  int channels() const { return static_cast<int>(planes.size()); }
  int64_t num_samples() const { return planes.empty() ? 0 : static_cast<int64_t>(planes[0].size()); }
  double duration_s() const { return sample_rate ? static_cast<double>(num_samples()) / sample_rate : 0.0; }
};

// Decodes the best audio stream of `path` (wav, mp3, m4a/aac, flac, ogg/opus, a video's audio track...).
// Throws InputError naming the file for: missing file, unreadable container, no audio stream, undecodable
// data, zero-length audio, duration above options.max_duration_s.
DecodedAudio decode_audio(const std::string& path, const DecodeOptions& options = {});

// Convenience: mono float32 at 16 kHz (what wav2vec2 takes). `source` receives the stream description.
std::vector<float> load_speech_16k(const std::string& path, AudioSource* source = nullptr,
                                   double max_duration_s = 3600.0);

// Writes a 16-bit PCM WAV file (interleaved samples in [-1, 1], clipped). Throws OutputError.
void write_wav_pcm16(const std::string& path, const std::vector<float>& interleaved, int sample_rate, int channels);

// ---- wav2vec2 embeddings (Hallo's AudioProcessor) -------------------------------------------------------

struct EmbedOptions {
  double fps = 25.0;
  int64_t clip_length = 16;          // seq_len is rounded up to a multiple of this (Hallo's n_sample_frames)
  // Memory bounds for long audio (docs/audio.md). The CNN feature encoder is chunked exactly (receptive field +
  // a two-pass global GroupNorm) and attention is computed in query blocks (exact), so the default result equals
  // Hallo's single pass for any length, with memory linear in the clip length.
  int64_t cnn_chunk_frames = 1024;  // 50 Hz CNN frames per chunk (~20 s; ~200 MB peak for the base model)
  // Optional approximation for very long clips (quadratic attention cost): when > 0 and seq_len exceeds it, the
  // transformer runs in overlapping windows of this many frames, dropping context_frames on each side.
  int64_t max_frames_per_pass = 0;
  int64_t context_frames = 250;  // 10 s at 25 fps
};

struct AudioEmbedding {
  at::Tensor emb;            // [seq_len, num_layers, hidden] float32 = stack(hidden_states[1:]) per frame
  int64_t seq_len = 0;       // padded frame count (multiple of clip_length)
  int64_t audio_length = 0;  // ceil(seconds * fps): frames that carry real audio (trim the video to this)
};

class Wav2Vec2Embedder {
 public:
  // `dir` holds config.json and model.safetensors or pytorch_model.bin (HF Wav2Vec2Model or Wav2Vec2ForCTC).
  static Wav2Vec2Embedder load(const std::string& dir, const std::string& device = "cpu");
  // Same from explicit files (config.json may carry the feature-extractor settings under "feature_extractor").
  static Wav2Vec2Embedder load_files(const std::string& config_json, const std::string& weights,
                                    const std::string& device = "cpu");
  Wav2Vec2Embedder(Wav2Vec2Embedder&&) noexcept;
  Wav2Vec2Embedder& operator=(Wav2Vec2Embedder&&) noexcept;
  ~Wav2Vec2Embedder();

  // Hallo's AudioProcessor.preprocess on mono 16 kHz samples (normalisation, padding, interpolation, encoder).
  AudioEmbedding embed(const std::vector<float>& speech_16k, const EmbedOptions& options = {}) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Wav2Vec2Embedder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// hallo scripts/inference.py process_audio_emb: [F, L, H] -> [F, 2*radius+1, L, H], frame i gets frames
// i-radius..i+radius clamped to [0, F-1].
at::Tensor audio_windows(const at::Tensor& audio_emb, int64_t radius = 2);
// The same rows for frames [begin, end) only (indices still clamped to the whole sequence): one clip's windows,
// so a job never holds the windows of the whole audio (5x its features).
at::Tensor audio_windows(const at::Tensor& audio_emb, int64_t radius, int64_t begin, int64_t end);

}  // namespace emo::audio
