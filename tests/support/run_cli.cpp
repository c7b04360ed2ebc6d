#include "run_cli.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>

namespace emo::test {

#ifndef EMO_CLI_PATH
#define EMO_CLI_PATH ""  // torch-only builds have no CLI
#endif

std::string cli_path() { return EMO_CLI_PATH; }

CliResult run_cli(const std::string& args) {
  CliResult r;
  std::string cmd = "'" + cli_path() + "' " + args + " 2>&1 </dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace emo::test
