// Helpers shared by the files of src/hub/.
#pragma once
#include <atomic>
#include <string>

#include "emo/download.h"
#include "hub/hub_errors.h"
#include "hub/http.h"

namespace emo::hub {

std::string hub_token(const std::string& flag);               // flag, else $HF_TOKEN
bool is_hex(const std::string& s, size_t len);
std::string lower(std::string s);
void check_relative_path(const std::string& repo, const std::string& p);  // throws ModelError
std::string api_base(const std::string& endpoint, const std::string& repo);
HubListing list_repo(const DownloadOptions& opt);          // list_hub_repo()
DownloadReport download_repo(const DownloadOptions& opt);  // download_hub_repo()

// Sleeps `ms`, in short slices; throws Error(kInterrupted) as soon as `cancel` is set.
void sleep_unless_cancelled(int ms, const std::atomic<bool>* cancel);
// GET with opt.retries retries (backoff from opt.retry_delay_ms); throws via raise_for.
HttpResult get_with_retries(const HttpClient& client, const std::string& url, const RequestContext& ctx,
                            const DownloadOptions& opt);

}  // namespace emo::hub
