#include "hub/hub_errors.h"

#include <cerrno>
#include <cstring>

#include "emo/download.h"

namespace emo::hub {

bool is_retryable(const HttpResult& r) {
  if (r.cancelled || r.write_errno) return false;
  switch (r.curl) {
    case CURLE_OK:
      return r.status >= 500 || r.status == 429 || r.status == 408;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

void raise_for(const HttpResult& r, const std::string& url, const RequestContext& ctx) {
  const std::string what = ctx.file.empty() ? ctx.repo : ctx.repo + ": " + ctx.file;
  if (r.cancelled) throw Error(ExitCode::kInterrupted, what + ": interrupted");
  if (r.write_errno) {
    const bool full = r.write_errno == ENOSPC || r.write_errno == EDQUOT;
    throw OutputError(what + ": " + (full ? "disk full" : "cannot write") + " (" + std::strerror(r.write_errno) + ")");
  }
  if (r.curl != CURLE_OK) {
    std::string hint;
    if (r.curl == CURLE_COULDNT_RESOLVE_HOST || r.curl == CURLE_COULDNT_CONNECT || r.curl == CURLE_COULDNT_RESOLVE_PROXY)
      hint = " (no network? check the connection, HF_ENDPOINT and the https_proxy/no_proxy settings)";
    else if (r.curl == CURLE_OPERATION_TIMEDOUT)
      hint = " (the connection stalled)";
    throw NetworkError(what + ": " + url + ": " + r.curl_error + hint);
  }
  const std::string code = r.header("x-error-code");
  std::string server_msg = r.header("x-error-message");
  const std::string status = "HTTP " + std::to_string(r.status);
  const std::string suffix = server_msg.empty() ? "" : " (" + server_msg + ")";
  if (r.status == 401 || r.status == 403) {
    std::string hint = ctx.have_token
                           ? "HF_TOKEN was rejected or has no access to this repository (gated? accept its terms on the Hub)"
                           : "the repository is private, gated or does not exist: set HF_TOKEN to a token with access";
    throw AuthError(what + ": " + status + suffix + ": " + hint);
  }
  if (r.status == 404) {
    if (code == "RevisionNotFound") throw NotFoundError(ctx.repo + ": revision '" + ctx.revision + "' not found (" + status + ")");
    if (code == "RepoNotFound")
      throw NotFoundError(ctx.repo + ": repository not found (" + status + "; check --repo, and set HF_TOKEN for a private one)");
    if (code == "EntryNotFound" || !ctx.file.empty())
      throw NotFoundError(what + ": file not found at revision '" + ctx.revision + "' (" + status + ")");
    throw NotFoundError(ctx.repo + ": repository or revision '" + ctx.revision + "' not found (" + status + suffix + ")");
  }
  throw NetworkError(what + ": " + url + ": " + status + suffix);
}

}  // namespace emo::hub
