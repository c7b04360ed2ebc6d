// Errors carry context (file, tensor, stage) and a documented process exit code (docs/exit-codes.md).
#pragma once
#include <stdexcept>
#include <string>

namespace emo {

// Process exit codes. Keep in sync with docs/exit-codes.md.
enum class ExitCode : int {
  kOk = 0,
  kFailure = 1,         // internal error / unexpected exception
  kUsage = 2,           // bad command line, or a subcommand that is not implemented yet
  kInput = 3,           // an input file (image, audio, manifest) is missing, unreadable or invalid
  kModel = 4,           // a model file/folder is missing, corrupt, hostile or mismatched
  kOutput = 5,          // the output cannot be written
  kPartial = 6,         // batch: some jobs failed, the others succeeded
  kRegression = 7,      // eval: a metric regressed against --baseline
  kNetwork = 8,         // download: no connection, DNS/TLS failure, timeouts, server errors after retries
  kAuth = 9,            // download: 401/403 (HF_TOKEN missing or rejected, gated repository)
  kNotFound = 10,       // download: 404 (repository, revision or file)
  kChecksum = 11,       // download: a file does not match the size/SHA-256 the Hub published
  kDeviceOutOfMemory = 12,  // the device (GPU) ran out of memory during a job
  kDevice = 13,         // another device failure (CUDA, cuDNN, cuBLAS error) during a job
  kInterrupted = 130,   // SIGINT/SIGTERM
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

struct UsageError : Error {
  explicit UsageError(const std::string& w) : Error(ExitCode::kUsage, w) {}
};
struct InputError : Error {
  explicit InputError(const std::string& w) : Error(ExitCode::kInput, w) {}
};
// Weight files and model folders: corrupt, hostile, missing keys, shape mismatches.
struct ModelError : Error {
  explicit ModelError(const std::string& w) : Error(ExitCode::kModel, w) {}
};
struct OutputError : Error {
  explicit OutputError(const std::string& w) : Error(ExitCode::kOutput, w) {}
};
struct NotImplementedError : Error {
  explicit NotImplementedError(const std::string& w) : Error(ExitCode::kUsage, w) {}
};

}  // namespace emo
