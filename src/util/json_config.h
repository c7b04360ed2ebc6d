// Reading diffusers-style config.json values: a key that is absent or null takes the constructor default,
// as `ConfigMixin.from_config` does.
#pragma once
#include <nlohmann/json.hpp>

namespace emo::util {

inline bool has(const nlohmann::json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

template <typename T>
T value_or(const nlohmann::json& j, const char* key, T def) {
  return has(j, key) ? j.at(key).get<T>() : def;
}

}  // namespace emo::util
