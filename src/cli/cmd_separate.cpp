// emo separate -i song.mp3 -o vocals.wav [--model DIR_OR_ONNX]: the vocals stem as Hallo's audio-separator
// writes it (16-bit stereo WAV at 44.1 kHz), written under a temporary name and renamed on success.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "cli/signals.h"
#include "emo/generate.h"
#include "emo/error.h"
#include "emo/separator.h"
#include "util/atomic_file.h"

namespace emo::cli {

namespace {
struct SeparateOptions {
  std::string input, output, model, device = "cpu";
  std::string speech_f32;  // optional: the 16 kHz mono samples Hallo feeds to wav2vec2, raw float32
};

std::string lower_ext(const std::string& p) {
  auto e = std::filesystem::path(p).extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

int run_separate(SeparateOptions o) {
  namespace fs = std::filesystem;
  if (lower_ext(o.output) != ".wav") throw UsageError(o.output + ": the vocals stem is written as WAV (use a .wav name)");
  if (!fs::exists(o.input)) throw InputError(o.input + ": no such audio file");
  if (fs::is_directory(o.output)) throw OutputError(o.output + ": is a directory");
  const auto out_dir = fs::path(o.output).parent_path();
  if (!out_dir.empty() && !fs::is_directory(out_dir)) throw OutputError(o.output + ": output folder does not exist");
  std::string where = o.model;
  if (where.empty()) {
    const char* env = std::getenv("EMO_MODEL_DIR");
    where = env && *env ? env : "pretrained_models";
  }
  const std::string model = audio::find_separator_model(where);
  if (model.empty())
    throw ModelError(where + ": no vocal separator (expected audio_separator/Kim_Vocal_2.onnx in the model folder, or an .onnx file)");
  const auto t0 = std::chrono::steady_clock::now();
  auto sep = audio::MdxSeparator::load(model, {}, o.device);
  const auto& p = sep.params();
  auto mix = audio::load_mix(o.input, p.sample_rate);
  spdlog::info("separating {} ({:.2f} s) with {}", o.input, static_cast<double>(mix.size(1)) / p.sample_rate, model);
  auto& cancel = install_cancel_handlers();
  auto stem = sep.separate(mix, [&](int64_t chunk, int64_t chunks) {
    if (cancel.load()) throw CancelledError(o.output + ": cancelled");
    spdlog::debug("chunk {}/{}", chunk + 1, chunks);
  });
  auto pcm = audio::stem_to_int16(stem);
  audio::write_stem_wav(o.output, pcm, p.sample_rate);
  if (!o.speech_f32.empty()) {  // Hallo's next step: ffmpeg -ar 16000, librosa.load(sr=16000) (mono)
    const auto speech = audio::hallo_vocals_16k(pcm, p.sample_rate);
    util::AtomicFile f(o.speech_f32);
    f.write(speech.data(), speech.size() * sizeof(float));
    f.commit();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("wrote {} in {:.1f} s", o.output, secs);
  return 0;
}
}  // namespace

Run add_separate(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<SeparateOptions>();
  auto* sub = app.add_subcommand(
      "separate", "Write the vocals stem of a song as Hallo separates it (audio-separator's MDX-Net Kim_Vocal_2)");
  sub->add_option("-i,--input", o->input, "Audio file (any format FFmpeg reads)")->required();
  sub->add_option("-o,--output", o->output, "Vocals stem (.wav: 16-bit stereo, 44.1 kHz)")->required();
  sub->add_option("-m,--model", o->model,
                  "Model folder holding audio_separator/Kim_Vocal_2.onnx, or the .onnx file (default: $EMO_MODEL_DIR, else pretrained_models)");
  sub->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--speech-f32", o->speech_f32,
                  "Also write the 16 kHz mono samples wav2vec2 gets from this stem in Hallo (ffmpeg -ar 16000, librosa.load), as raw float32");
  return [o] { return run_separate(*o); };
}

}  // namespace emo::cli
