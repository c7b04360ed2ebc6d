// emo make-test-model DIR: a tiny random-weight model folder in Hallo's layout (developer tool; used by tests).
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "emo/tiny_model.h"

namespace emo::cli {

Run add_make_test_model(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<std::pair<std::string, TinyModelOptions>>();
  auto* sub = app.add_subcommand("make-test-model",
                                 "Developer tool: write a tiny random-weight model folder (Hallo layout) for tests and demos");
  sub->add_option("dir", o->first, "Folder to write (created if needed)")->required();
  sub->add_option("--preset", o->second.preset, "hallo or emo (EMO: zero first motion frames, speed layers)")
      ->check(CLI::IsMember({"hallo", "emo"}));
  sub->add_option("--seed", o->second.seed, "Weight initialisation seed");
  sub->add_option("--clip-frames", o->second.clip_frames, "Frames per clip")->check(CLI::PositiveNumber);
  sub->add_option("--motion-frames", o->second.motion_frames, "Motion frames")->check(CLI::NonNegativeNumber);
  sub->add_option("--size", o->second.size, "Frame size (multiple of 8, >= 64)");
  sub->add_option("--steps", o->second.steps, "Default DDIM steps written to emo.json")->check(CLI::PositiveNumber);
  sub->add_flag("--full-size", o->second.full_size,
                "Hallo's real shapes (2.5 B parameters, ~5 GB fp16) for benchmarks; the sizing options above are then "
                "ignored with the hallo preset (no emo.json: Hallo's defaults)");
  return [o] {
    write_tiny_model(o->first, o->second);
    spdlog::info("wrote {} {} model to {} (try: emo generate -m {} -i face.png -a voice.wav -o out.mp4)",
                 o->second.full_size ? "full-size" : "tiny", o->second.preset, o->first, o->first);
    return 0;
  };
}

}  // namespace emo::cli
