// Shared helpers of the fuzz targets (tests/fuzz/). Policy: a target catches only the exceptions its reader
// documents (emo::Error with its exit code; std::runtime_error for the ONNX walker). Any other exception
// (nlohmann::json::exception, c10::Error, std::bad_alloc, std::out_of_range, ...) escapes, terminates the process
// and counts as a finding: in emo it would surface as exit 1 "internal error" instead of the documented code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "emo/error.h"

namespace emo::fuzz {

inline std::string as_text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Reads every byte of a tensor-sized region so that AddressSanitizer checks the whole range a reader handed out.
inline uint64_t touch(const void* p, size_t n) {
  const auto* b = static_cast<const volatile uint8_t*>(p);
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += b[i];
  return s;
}

}  // namespace emo::fuzz
