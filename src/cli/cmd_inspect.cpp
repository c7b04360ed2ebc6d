// emo inspect FILE_OR_DIR: list tensors of a weight file, or the components of a model folder.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "emo/error.h"
#include "emo/inspect.h"
#include "emo/models.h"

namespace emo::cli {

namespace {
struct InspectOptions {
  std::string path;
  bool json = false;
  size_t limit = 0;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

int run_inspect(const InspectOptions& o) {
  namespace fs = std::filesystem;
  if (!fs::exists(o.path)) throw InputError(o.path + ": no such file or directory");
  if (fs::is_directory(o.path)) {
    auto comps = scan_model_folder(o.path);
    if (o.json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& c : comps) j.push_back({{"component", c.name}, {"found", c.found}, {"path", c.path}, {"detail", c.detail}});
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      // A diffusers `unet/` or `vae/` folder: report the network config it describes.
      const auto cfg = fs::path(o.path) / "config.json";
      if (fs::exists(cfg)) {
        try {
          const auto desc = describe_diffusers_config(cfg.string());
          if (!desc.empty()) std::printf("diffusers config %s\n  %s\n", cfg.string().c_str(), desc.c_str());
        } catch (const ModelError& e) {
          std::printf("diffusers config %s\n  not supported: %s\n", cfg.string().c_str(), e.what());
        }
      }
      print_model_folder(o.path, comps);
    }
    return 0;
  }
  auto s = inspect_file(o.path);
  if (o.json) {
    nlohmann::json j;
    j["path"] = s.path;
    j["format"] = s.format;
    j["total_params"] = s.total_params;
    j["total_bytes"] = s.total_bytes;
    j["metadata"] = nlohmann::json::object();
    for (const auto& [k, v] : s.metadata) j["metadata"][k] = v;
    j["tensors"] = nlohmann::json::array();
    for (const auto& t : s.tensors) j["tensors"].push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: %s, %zu tensors\n", s.path.c_str(), s.format.c_str(), s.tensors.size());
  for (const auto& [k, v] : s.metadata) std::printf("  metadata %s = %s\n", k.c_str(), v.c_str());
  size_t shown = 0;
  for (const auto& t : s.tensors) {
    if (o.limit && shown++ >= o.limit) {
      std::printf("  ... (%zu more)\n", s.tensors.size() - o.limit);
      break;
    }
    std::printf("  %-70s %-5s %s\n", t.name.c_str(), t.dtype.c_str(), shape_str(t.shape).c_str());
  }
  std::printf("total: %llu parameters, %.2f MiB\n", static_cast<unsigned long long>(s.total_params),
              static_cast<double>(s.total_bytes) / (1024.0 * 1024.0));
  return 0;
}
}  // namespace

void print_model_folder(const std::string& dir, const std::vector<Component>& comps) {
  std::printf("model folder %s\n", dir.c_str());
  for (const auto& c : comps)
    std::printf("  %-8s %s%s%s\n", c.found ? "[found]" : "[--]", c.name.c_str(), c.found ? ": " : "  ",
                c.found ? c.path.c_str() : c.detail.c_str());
}

Run add_inspect(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<InspectOptions>();
  auto* sub = app.add_subcommand("inspect", "List the tensors of a weight file (safetensors, .pth/.ckpt/.bin) or the components of a model folder");
  sub->add_option("path", opts->path, "Weight file or model folder")->required();
  sub->add_flag("--json", opts->json, "Print JSON instead of text");
  sub->add_option("--limit", opts->limit, "Show at most N tensors (0 = all)");
  return [opts] { return run_inspect(*opts); };
}

}  // namespace emo::cli
