// emo probe FILE: the streams of a media file as libav sees them (codec, frames counted from packets, duration,
// size, fps, sample rate), in text or JSON. For scripts (scripts/gpu_check.sh) and users checking an output.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "emo/video.h"

namespace emo::cli {

namespace {
struct ProbeOptions {
  std::string path;
  bool json = false;
};

int run_probe(const ProbeOptions& o) {
  const auto p = video::probe(o.path, /*count_packets=*/true);  // InputError (exit 3) on unreadable files
  if (o.json) {
    nlohmann::json j;
    j["path"] = p.path;
    j["format"] = p.format;
    j["duration"] = p.duration;
    j["streams"] = nlohmann::json::array();
    for (const auto& s : p.streams) {
      nlohmann::json js = {{"index", s.index}, {"type", s.type}, {"codec", s.codec}, {"frames", s.frames},
                           {"duration", s.duration}};
      if (s.type == "video") js.update({{"width", s.width}, {"height", s.height}, {"fps", s.fps}, {"pix_fmt", s.pix_fmt}});
      if (s.type == "audio") js.update({{"sample_rate", s.sample_rate}, {"channels", s.channels}});
      j["streams"].push_back(js);
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: %s, %.3f s\n", p.path.c_str(), p.format.c_str(), p.duration);
  for (const auto& s : p.streams) {
    std::printf("  #%d %s %s, %lld frames, %.3f s", s.index, s.type.c_str(), s.codec.c_str(),
                static_cast<long long>(s.frames), s.duration);
    if (s.type == "video") std::printf(", %dx%d, %.3f fps, %s", s.width, s.height, s.fps, s.pix_fmt.c_str());
    if (s.type == "audio") std::printf(", %d Hz, %d channels", s.sample_rate, s.channels);
    std::printf("\n");
  }
  return 0;
}
}  // namespace

Run add_probe(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<ProbeOptions>();
  auto* sub = app.add_subcommand("probe", "Show the streams of a video or audio file (frames counted from packets)");
  sub->add_option("file", opts->path, "Media file (MP4, MKV, WAV, MP3, ...)")->required();
  sub->add_flag("--json", opts->json, "Print JSON instead of text");
  return [opts] { return run_probe(*opts); };
}

}  // namespace emo::cli
