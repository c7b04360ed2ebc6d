// Each subcommand lives in its own file and registers itself on the app.
// The callback returned runs after parsing and returns the process exit code.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

#include "emo/generate.h"
#include "emo/inspect.h"

namespace emo::cli {

struct GlobalOptions {
  int threads = 0;   // 0 = all cores
  bool verbose = false;
  bool quiet = false;
  std::string log_level;  // debug, info, warn, error (overrides -v/-q)
};

using Run = std::function<int()>;

Run add_generate(CLI::App& app, GlobalOptions& g);
Run add_batch(CLI::App& app, GlobalOptions& g);
Run add_inspect(CLI::App& app, GlobalOptions& g);
Run add_bench(CLI::App& app, GlobalOptions& g);
Run add_face(CLI::App& app, GlobalOptions& g);
Run add_eval(CLI::App& app, GlobalOptions& g);
Run add_cut(CLI::App& app, GlobalOptions& g);
Run add_make_test_model(CLI::App& app, GlobalOptions& g);
Run add_probe(CLI::App& app, GlobalOptions& g);
Run add_download(CLI::App& app, GlobalOptions& g);
Run add_separate(CLI::App& app, GlobalOptions& g);

// Flags shared by generate and batch (src/cli/cmd_generate.cpp).
void add_generate_param_flags(CLI::App* sub, GenerateParams& p);
void add_runtime_flags(CLI::App* sub, RuntimeOptions& rt);

// The component list `emo inspect DIR` prints (src/cli/cmd_inspect.cpp); `emo download` ends with it too.
void print_model_folder(const std::string& dir, const std::vector<Component>& comps);

// Shared helper for subcommands whose issue has not landed yet.
int not_implemented(const char* what);

}  // namespace emo::cli
