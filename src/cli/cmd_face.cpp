#include "cli/commands.h"

namespace emo::cli {

Run add_face(CLI::App& app, GlobalOptions& g) {
  app.add_subcommand("face", "Analyse a portrait: face box, landmarks, embedding and masks (not implemented yet)");
  return [] { return not_implemented("emo face"); };
}

}  // namespace emo::cli
