// --resume: is an output already complete? The sidecar's recorded frame count must match what probing the
// video finds. Everything about "complete" lives in check_output() and default_frame_probe().
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "emo/batch.h"
#include "emo/video.h"
#include "pipeline/sidecar.h"

namespace fs = std::filesystem;

namespace emo::batch {

std::string sidecar_path(const std::string& output) { return pipeline::sidecar_path(output); }

std::optional<int64_t> default_frame_probe(const std::string& path) {
auto info = emo::video::probe(path, /*count_packets=*/true);
  const auto* v = info.first("video");
  if (!v) throw InputError(path + ": no video stream");
  if (v->frames < 0) return std::nullopt;
  return v->frames;
}

OutputCheck check_output(const std::string& output, const FrameProbe& probe, const GenerateRequest* expected) {
  OutputCheck r;
  std::error_code ec;
  if (!fs::exists(output, ec)) {
    r.reason = "no output yet";
    return r;
  }
  if (!fs::is_regular_file(output, ec) || fs::file_size(output, ec) == 0 || ec) {
    r.reason = "output is empty or not a regular file";
    return r;
  }
  std::string side = sidecar_path(output);
  std::ifstream sf(side);
  if (!sf) {
    r.reason = "no sidecar " + side;
    return r;
  }
  int64_t recorded = -1;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(sf);
    if (j.is_object() && j.contains("frames") && j["frames"].is_number_integer()) recorded = j["frames"].get<int64_t>();
  } catch (const std::exception&) {
    r.reason = "sidecar " + side + " is not valid JSON";
    return r;
  }
  if (expected && recorded > 0) {
    // A finished output of another job (different image, audio or seed) is stale, not complete.
    auto differs = [&](const char* key, const nlohmann::json& want) { return j.contains(key) && j[key] != want; };
    for (auto [key, want] : {std::pair<const char*, nlohmann::json>{"image", expected->image},
                             {"audio", expected->audio}, {"seed", expected->params.seed}}) {
      if (differs(key, want)) {
        r.reason = "rendered with another " + std::string(key) + " (" + j[key].dump() + ", the job has " + want.dump() + ")";
        return r;
      }
    }
  }
  if (recorded <= 0) {
    r.reason = "sidecar " + side + " records no frame count";
    return r;
  }
  std::optional<int64_t> counted;
  try {
    counted = probe ? probe(output) : default_frame_probe(output);
  } catch (const std::exception& e) {
    r.reason = std::string("output does not probe as a complete video: ") + e.what();
    return r;
  }
  if (counted && *counted != recorded) {
    r.reason = "output has " + std::to_string(*counted) + " frames, its sidecar records " + std::to_string(recorded);
    return r;
  }
  r.complete = true;
  r.frames = recorded;
  return r;
}

}  // namespace emo::batch
