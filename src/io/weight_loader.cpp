#include "emo/weight_loader.h"

#include <torch/torch.h>

#include <set>
#include <sstream>

#include "emo/error.h"
#include "emo/mapped_file.h"

namespace emo::io {

namespace {
std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

bool ignored(const std::string& key, const std::vector<std::string>& ignore) {
  for (const auto& p : ignore) {
    if (key == p) return true;
    if (!p.empty() && p.back() == '.' && key.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}
}  // namespace

std::string LoadReport::summary(size_t max_items) const {
  std::ostringstream o;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    o << " " << v.size() << " " << what << " (";
    for (size_t i = 0; i < v.size() && i < max_items; ++i) o << (i ? ", " : "") << v[i];
    if (v.size() > max_items) o << ", ...";
    o << ");";
  };
  o << loaded << " tensors loaded;";
  list("missing", missing);
  list("unexpected", unexpected);
  list("shape mismatches", mismatched);
  return o.str();
}

StateDict with_prefix(const StateDict& sd, const std::string& prefix) {
  StateDict out;
  for (auto it = sd.lower_bound(prefix); it != sd.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out[it->first.substr(prefix.size())] = it->second;
  return out;
}

LoadReport load_module(torch::nn::Module& module, const StateDict& sd, const LoadOptions& options) {
  torch::NoGradGuard no_grad;
  LoadReport report;
  std::set<std::string> used;
  auto handle = [&](const std::string& name, torch::Tensor& target) {
    const std::string key = options.prefix + name;
    auto it = sd.find(key);
    if (it == sd.end()) {
      report.missing.push_back(key);
      return;
    }
    used.insert(key);
    const auto& src = it->second;
    if (src.sizes() != target.sizes()) {
      report.mismatched.push_back(key + ": file " + shape_str(src.sizes()) + " vs module " + shape_str(target.sizes()));
      return;
    }
    target.copy_(src);  // converts dtype and device in one step (no intermediate copy)
    // A tensor read from a memory-mapped checkpoint: its pages are not needed any more (peak memory = the weights,
    // not the weights plus the file).
    if (src.device().is_cpu() && src.is_contiguous())
      release_mapped_pages(src.data_ptr(), static_cast<size_t>(src.nbytes()));
    ++report.loaded;
  };
  for (auto& p : module.named_parameters(/*recurse=*/true)) handle(p.key(), p.value());
  for (auto& b : module.named_buffers(/*recurse=*/true)) handle(b.key(), b.value());
  for (auto it = sd.lower_bound(options.prefix);
       it != sd.end() && it->first.compare(0, options.prefix.size(), options.prefix) == 0; ++it) {
    if (used.count(it->first)) continue;
    if (ignored(it->first.substr(options.prefix.size()), options.ignore_unexpected)) continue;
    report.unexpected.push_back(it->first);
  }
  if (options.strict && !report.ok()) {
    std::string src = options.source.empty() ? std::string("weights") : options.source;
    throw ModelError(src + (options.prefix.empty() ? "" : " [" + options.prefix + "]") +
                     ": does not match the model:" + report.summary());
  }
  return report;
}

}  // namespace emo::io
