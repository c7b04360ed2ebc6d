#include "cli/commands.h"

namespace emo::cli {

Run add_eval(CLI::App& app, GlobalOptions& g) {
  app.add_subcommand("eval", "Compute FID, FVD, Sync-C/D, SSIM, PSNR, F-SIM of generated videos (not implemented yet)");
  return [] { return not_implemented("emo eval"); };
}

}  // namespace emo::cli
