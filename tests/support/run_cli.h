// Runs the built `emo` binary (EMO_CLI_PATH) and captures exit code and combined output.
#pragma once
#include <string>

namespace emo::test {

struct CliResult {
  int code = -1;
  std::string output;  // stdout + stderr
};

CliResult run_cli(const std::string& args);
std::string cli_path();

}  // namespace emo::test
