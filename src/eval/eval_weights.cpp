#include "eval/eval_weights.h"

#include "emo/weight_loader.h"

namespace emo::eval {

void load_metric_weights(torch::nn::Module& module, const io::StateDict& sd_in, const std::string& source,
                         const std::vector<std::string>& ignore_prefixes) {
  io::StateDict sd = sd_in;
  static const std::string kNbt = "num_batches_tracked";
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    const auto& name = b.key();
    if (name.size() >= kNbt.size() && name.compare(name.size() - kNbt.size(), kNbt.size(), kNbt) == 0 &&
        !sd.count(name))
      sd[name] = torch::zeros({}, torch::kInt64);
  }
  io::LoadOptions opt;
  opt.strict = true;
  opt.source = source;
  opt.ignore_unexpected = ignore_prefixes;
  io::load_module(module, sd, opt);
  module.eval();
}

}  // namespace emo::eval
