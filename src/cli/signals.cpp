#include "cli/signals.h"

#include <csignal>
#include <unistd.h>

namespace emo::cli {

namespace {
std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) {
  if (g_cancel.exchange(true)) _exit(130);
  const char msg[] = "\nemo: interrupted, finishing cleanly (press Ctrl-C again to abort)\n";
  (void)!::write(2, msg, sizeof msg - 1);
}
}  // namespace

std::atomic<bool>& install_cancel_handlers() {
  static bool installed = false;
  if (!installed) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    installed = true;
  }
  return g_cancel;
}

}  // namespace emo::cli
