// emo::validate: every GenerateParams value checked before any work starts, every problem reported in one
// message (docs/limits.md). Used by `emo generate`, by `emo batch` (manifest and per job) and at the top of
// Pipeline::generate.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "emo/generate.h"
#include "emo/sampler_names.h"

namespace emo {

// A named namespace (not an anonymous one): unity builds put this file in one translation unit with others.
namespace validate_detail {

// Ranges (keep in sync with docs/limits.md).
constexpr int kMaxSteps = 1000;          // DDIM over a 1000-step training schedule
constexpr double kMaxCfg = 50.0;
constexpr int kMaxFps = 240;
constexpr int kSizeMultiple = 64;        // latent /8, then three UNet downsamplings and the /64 mask pyramid
constexpr int kMaxSize = 2048;
constexpr double kMaxWeight = 10.0;      // pose / face / lip weights
constexpr double kMinSpeed = 0.1, kMaxSpeed = 1.3;  // speech 0.1-1.0, song 1.0-1.3 (--speed help)
constexpr int kMaxCrf = 51;

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

struct Collector {
  std::vector<std::string> out;
  void add(const std::string& s) { out.push_back(s); }
};

// A 0-means-preset integer: negative or out of range is an error (never a silent fallback).
void check_preset_int(Collector& c, const char* name, int v, int lo, int hi, const std::string& what) {
  if (v == 0) return;
  if (v < lo || v > hi)
    c.add(std::string(name) + " " + std::to_string(v) + ": expected " + what + " (0 = the model preset's value)");
}

bool size_ok(int v) { return v > 0 && v % kSizeMultiple == 0 && v <= kMaxSize; }
std::string size_rule() {
  return "a positive multiple of " + std::to_string(kSizeMultiple) + " up to " + std::to_string(kMaxSize);
}

std::vector<std::string> problems(const GenerateParams& p, const ModelPreset* preset) {
  Collector c;
  check_preset_int(c, "steps", p.steps, 1, kMaxSteps, "1 to " + std::to_string(kMaxSteps));
  if (!is_sampler_name(p.sampler)) c.add("sampler '" + p.sampler + "': expected " + sampler_choices());
  if (!std::isfinite(p.cfg_scale) || (p.cfg_scale != 0 && (p.cfg_scale < 1.0 || p.cfg_scale > kMaxCfg)))
    c.add("cfg_scale " + num(p.cfg_scale) + ": expected a number from 1 to " + num(kMaxCfg) +
          " (0 = the model preset's value)");
  check_preset_int(c, "fps", p.fps, 1, kMaxFps, "1 to " + std::to_string(kMaxFps));
  if (p.width != 0 && !size_ok(p.width))
    c.add("width " + std::to_string(p.width) + ": expected " + size_rule() + " (0 = the model preset's value)");
  if (p.height != 0 && !size_ok(p.height))
    c.add("height " + std::to_string(p.height) + ": expected " + size_rule() + " (0 = the model preset's value)");
  if (p.width > 0 && p.height > 0 && p.width != p.height)
    c.add("width " + std::to_string(p.width) + " and height " + std::to_string(p.height) +
          ": must be equal (square portraits; give one of them)");
  for (auto [name, v] : {std::pair<const char*, double>{"pose_weight", p.pose_weight},
                         {"face_weight", p.face_weight},
                         {"lip_weight", p.lip_weight}})
    if (!std::isfinite(v) || v < 0 || v > kMaxWeight)
      c.add(std::string(name) + " " + num(v) + ": expected a number from 0 to " + num(kMaxWeight));
  if (!std::isfinite(p.speed) || p.speed < kMinSpeed || p.speed > kMaxSpeed)
    c.add("speed " + num(p.speed) + ": expected a number from " + num(kMinSpeed) + " to " + num(kMaxSpeed) +
          " (speech 0.1-1.0, song 1.0-1.3)");
  if (p.crf < 0 || p.crf > kMaxCrf) c.add("crf " + std::to_string(p.crf) + ": expected 0 to " + std::to_string(kMaxCrf));
  if (!std::isfinite(p.max_audio_seconds) || p.max_audio_seconds <= 0)
    c.add("max_audio_seconds " + num(p.max_audio_seconds) + ": expected a number > 0");

  if (preset) {
    // The values the job would render with, when they come from the model's preset (emo.json).
    const std::string from = " (the " + preset->name + " preset's value)";
    if (p.steps == 0 && (preset->steps < 1 || preset->steps > kMaxSteps))
      c.add("steps " + std::to_string(preset->steps) + from + ": expected 1 to " + std::to_string(kMaxSteps));
    if (p.cfg_scale == 0 && !(preset->cfg_scale >= 1.0 && preset->cfg_scale <= kMaxCfg))
      c.add("cfg_scale " + num(preset->cfg_scale) + from + ": expected a number from 1 to " + num(kMaxCfg));
    if (p.fps == 0 && (preset->fps < 1 || preset->fps > kMaxFps))
      c.add("fps " + std::to_string(preset->fps) + from + ": expected 1 to " + std::to_string(kMaxFps));
    if (p.width == 0 && p.height == 0) {
      if (!size_ok(preset->width) || preset->width != preset->height)
        c.add("size " + std::to_string(preset->width) + "x" + std::to_string(preset->height) + from + ": expected " +
              size_rule() + ", square");
    }
    if (!preset->speed_layers && std::isfinite(p.speed) && p.speed != 1.0)
      c.add("speed " + num(p.speed) + ": this model has no speed layers (" + preset->name +
            " preset), so --speed would have no effect; leave it at 1");
  }
  return c.out;
}

[[noreturn]] void throw_problems(const std::vector<std::string>& probs) {
  std::string msg = probs.size() == 1 ? "invalid parameter: " : std::to_string(probs.size()) + " invalid parameters: ";
  for (size_t i = 0; i < probs.size(); ++i) msg += (i ? "; " : "") + probs[i];
  throw UsageError(msg);
}
}  // namespace validate_detail

std::vector<std::string> parameter_problems(const GenerateParams& p, const ModelPreset* preset) {
  return validate_detail::problems(p, preset);
}

void validate(const GenerateParams& params) {
  auto probs = parameter_problems(params, nullptr);
  if (!probs.empty()) validate_detail::throw_problems(probs);
}

EffectiveParams validate(const GenerateParams& p, const ModelPreset& preset) {
  auto probs = parameter_problems(p, &preset);
  if (!probs.empty()) validate_detail::throw_problems(probs);
  EffectiveParams e;
  e.steps = p.steps > 0 ? p.steps : preset.steps;
  e.cfg_scale = p.cfg_scale > 0 ? p.cfg_scale : preset.cfg_scale;
  e.fps = p.fps > 0 ? p.fps : preset.fps;
  e.size = p.width > 0 ? p.width : p.height > 0 ? p.height : preset.width;
  return e;
}

}  // namespace emo
