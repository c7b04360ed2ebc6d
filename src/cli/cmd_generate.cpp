#include "cli/commands.h"

namespace emo::cli {

Run add_generate(CLI::App& app, GlobalOptions& g) {
  app.add_subcommand("generate", "Render one talking-portrait video from an image and an audio clip (not implemented yet)");
  return [] { return not_implemented("emo generate"); };
}

}  // namespace emo::cli
