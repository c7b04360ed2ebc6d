#include "cli/commands.h"

namespace emo::cli {

Run add_batch(CLI::App& app, GlobalOptions& g) {
  app.add_subcommand("batch", "Render many jobs from a manifest with one model load (not implemented yet)");
  return [] { return not_implemented("emo batch"); };
}

}  // namespace emo::cli
