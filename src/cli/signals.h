// SIGINT/SIGTERM -> a cancellation flag the library checks between steps (no partial outputs).
#pragma once
#include <atomic>

namespace emo::cli {

// Installs the handlers once and returns the flag they set. A second signal exits immediately (130).
std::atomic<bool>& install_cancel_handlers();

}  // namespace emo::cli
