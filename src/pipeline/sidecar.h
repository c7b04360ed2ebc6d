// Reproducibility records: fast content hashes of model files and the OUT.json sidecar.
#pragma once
#include <nlohmann/json.hpp>
#include <memory>
#include <string>

#include "util/atomic_file.h"

namespace emo::pipeline {

// 64-bit FNV-1a over the whole file (hex). Throws ModelError when unreadable.
std::string hash_file(const std::string& path);

// Sidecar path for a video: "out.mp4" -> "out.json".
std::string sidecar_path(const std::string& video_path);

// Writes JSON atomically (temp + rename). Throws OutputError.
void write_json_atomic(const std::string& path, const nlohmann::json& j);
// Writes JSON to a temporary file beside `path` and closes it, without renaming: the caller commit()s it once
// everything else the job promised is written too (destroying it uncommitted removes the file).
std::unique_ptr<util::AtomicFile> write_json_pending(const std::string& path, const nlohmann::json& j);

}  // namespace emo::pipeline
