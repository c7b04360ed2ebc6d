// Turning a failed Hub request into the right emo::Error (exit codes 8-11, 130), and whether to retry it.
#pragma once
#include <string>

#include "hub/http.h"

namespace emo::hub {

// What was being fetched, for the one-line messages.
struct RequestContext {
  std::string repo;
  std::string revision;
  std::string file;      // "" for API calls
  bool have_token = false;
};

// A transient failure (dropped connection, timeout, 5xx, 429) worth another attempt.
bool is_retryable(const HttpResult& r);

// True when the request succeeded (no transport error, 2xx).
inline bool ok(const HttpResult& r) { return r.curl == CURLE_OK && r.status >= 200 && r.status < 300; }

// Throws NetworkError / AuthError / NotFoundError / OutputError (disk) / Error(kInterrupted) for `r`.
[[noreturn]] void raise_for(const HttpResult& r, const std::string& url, const RequestContext& ctx);

}  // namespace emo::hub
