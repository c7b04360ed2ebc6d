// Loading the metric networks' published weight files (old torch.save state dicts).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "emo/state_dict.h"

namespace emo::eval {

// Strict load of `sd` into `module` (eval mode afterwards). BatchNorm `num_batches_tracked` entries may be
// absent from the file (older / re-saved files); they are unused in eval mode and filled with 0.
// Keys starting with one of `ignore_prefixes` (e.g. "fc.") are ignored.
void load_metric_weights(torch::nn::Module& module, const io::StateDict& sd, const std::string& source,
                         const std::vector<std::string>& ignore_prefixes = {});

}  // namespace emo::eval
