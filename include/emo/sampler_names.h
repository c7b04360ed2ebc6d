// The sampler names `--sampler` and the manifests' "sampler" key accept, in one place: the CLI's choices, the
// parameter check (src/pipeline/validate.cpp, which the fuzz parsers link without torch) and
// sampling::parse_sampler all read this list. Header-only and torch-free on purpose.
#pragma once
#include <array>
#include <string>

namespace emo {

// ddim: Hallo's DDIMScheduler (the default); dpmpp-2m: DPM-Solver++ 2M; unipc: UniPC (bh2, order 2).
inline constexpr std::array<const char*, 3> kSamplerNames = {"ddim", "dpmpp-2m", "unipc"};

inline bool is_sampler_name(const std::string& name) {
  for (const char* n : kSamplerNames)
    if (name == n) return true;
  return false;
}

// "ddim, dpmpp-2m or unipc", for error messages.
inline std::string sampler_choices() {
  std::string s;
  for (size_t i = 0; i < kSamplerNames.size(); ++i)
    s += std::string(i == 0 ? "" : i + 1 == kSamplerNames.size() ? " or " : ", ") + kSamplerNames[i];
  return s;
}

}  // namespace emo
