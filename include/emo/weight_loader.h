// One generic loader for every network: walks a module's named_parameters()/named_buffers() (whose
// dotted names equal the PyTorch state-dict keys by construction) and copies the matching tensors.
#pragma once
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "emo/state_dict.h"

namespace emo::io {

struct LoadOptions {
  std::string prefix;              // e.g. "denoising_unet." — only keys under it are considered
  bool strict = true;              // missing / unexpected / mismatched keys are errors
  // Keys under `prefix` that may be present in the file without a module counterpart
  // (exact names or prefixes ending in '.'), e.g. "lm_head." for wav2vec2 CTC files.
  std::vector<std::string> ignore_unexpected;
  std::string source;              // file name for error messages
};

struct LoadReport {
  size_t loaded = 0;
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file (under prefix), not in the module
  std::vector<std::string> mismatched;  // "name: file [..] vs module [..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary(size_t max_items = 8) const;
};

// Copies tensors into the module's parameters and buffers (converting dtype and device to the
// module's). With strict=true throws ModelError listing the problems; otherwise returns the report.
LoadReport load_module(torch::nn::Module& module, const StateDict& sd, const LoadOptions& options = {});

// Keys of `sd` under `prefix`, with the prefix removed.
StateDict with_prefix(const StateDict& sd, const std::string& prefix);

}  // namespace emo::io
