#include "cli/commands.h"

namespace emo::cli {

Run add_bench(CLI::App& app, GlobalOptions& g) {
  app.add_subcommand("bench", "Measure speed and memory of each stage (not implemented yet)");
  return [] { return not_implemented("emo bench"); };
}

}  // namespace emo::cli
