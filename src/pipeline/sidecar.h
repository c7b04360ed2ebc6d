// Reproducibility records: fast content hashes of model files and the OUT.json sidecar.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace emo::pipeline {

// 64-bit FNV-1a over the whole file (hex). Throws ModelError when unreadable.
std::string hash_file(const std::string& path);

// Sidecar path for a video: "out.mp4" -> "out.json".
std::string sidecar_path(const std::string& video_path);

// Writes JSON atomically (temp + rename). Throws OutputError.
void write_json_atomic(const std::string& path, const nlohmann::json& j);

}  // namespace emo::pipeline
