#include "emo/inspect.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/state_dict.h"

namespace fs = std::filesystem;

namespace emo {

namespace {
std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "F32";
    case c10::kHalf: return "F16";
    case c10::kBFloat16: return "BF16";
    case c10::kDouble: return "F64";
    case c10::kLong: return "I64";
    case c10::kInt: return "I32";
    case c10::kShort: return "I16";
    case c10::kChar: return "I8";
    case c10::kByte: return "U8";
    case c10::kBool: return "BOOL";
    default: return c10::toString(t);
  }
}
}  // namespace

FileSummary inspect_file(const std::string& path) {
  FileSummary s;
  s.path = path;
  auto fmt = io::detect_format(path);
  s.format = io::to_string(fmt);
  if (fmt == io::WeightFormat::kSafetensors) {
    auto f = io::SafetensorsFile::open(path);
    for (const auto& [k, v] : f.metadata()) s.metadata.emplace_back(k, v);
    for (const auto& e : f.entries()) {
      s.tensors.push_back({e.name, e.dtype, e.shape});
      uint64_t n = 1;
      for (auto d : e.shape) n *= static_cast<uint64_t>(d);
      s.total_params += n;
      s.total_bytes += e.end - e.begin;
    }
  } else {
    auto sd = io::load_state_dict(path);
    for (const auto& [k, t] : sd) {
      s.tensors.push_back({k, dtype_name(t.scalar_type()), t.sizes().vec()});
      s.total_params += static_cast<uint64_t>(t.numel());
      s.total_bytes += static_cast<uint64_t>(t.numel()) * t.element_size();
    }
  }
  std::sort(s.tensors.begin(), s.tensors.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return s;
}

namespace {
// A HuggingFace wav2vec2 folder: config.json with model_type "wav2vec2" or a Wav2Vec2* architecture.
bool scan_wav2vec2_folder(const fs::path& dir, std::vector<Component>& out) {
  const fs::path cfg = dir / "config.json";
  if (!fs::is_regular_file(cfg)) return false;
  nlohmann::json j;
  try {
    std::ifstream f(cfg);
    j = nlohmann::json::parse(f);
  } catch (const std::exception&) {
    return false;
  }
  if (!j.is_object()) return false;
  bool is_w2v = j.value("model_type", std::string()) == "wav2vec2";
  if (j.contains("architectures") && j["architectures"].is_array())
    for (const auto& a : j["architectures"])
      if (a.is_string() && a.get<std::string>().rfind("Wav2Vec2", 0) == 0) is_w2v = true;
  if (!is_w2v) return false;
  auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? std::to_string(j[k].get<int64_t>()) : std::string("?"); };
  const std::string dims = "hidden " + num("hidden_size") + ", layers " + num("num_hidden_layers") + ", heads " +
                           num("num_attention_heads");
  Component c{"wav2vec2 config (" + dims + ")", cfg.string(), true, dims};
  out.push_back(c);
  Component w{"wav2vec2 weights", "", false, "missing: expected model.safetensors or pytorch_model.bin"};
  for (const char* n : {"model.safetensors", "pytorch_model.bin"})
    if (fs::exists(dir / n)) {
      w = {"wav2vec2 weights", (dir / n).string(), true, "found"};
      break;
    }
  out.push_back(w);
  const fs::path pre = dir / "preprocessor_config.json";
  out.push_back({"wav2vec2 preprocessor config", fs::exists(pre) ? pre.string() : "", fs::exists(pre),
                 fs::exists(pre) ? "found" : "missing: preprocessor_config.json (optional; defaults do_normalize, 16 kHz)"});
  return true;
}
}  // namespace

std::vector<Component> scan_model_folder(const std::string& dir) {
  if (!fs::is_directory(dir)) throw ModelError(dir + ": not a directory");
  auto first_existing = [&](std::initializer_list<const char*> rels) -> std::string {
    for (const char* r : rels) {
      fs::path p = fs::path(dir) / r;
      if (fs::exists(p)) return p.string();
    }
    return "";
  };
  std::vector<Component> out;
  if (scan_wav2vec2_folder(dir, out)) return out;
  auto add = [&](const char* name, std::initializer_list<const char*> rels, const char* expected) {
    Component c;
    c.name = name;
    c.path = first_existing(rels);
    c.found = !c.path.empty();
    c.detail = c.found ? "found" : std::string("missing: expected ") + expected;
    out.push_back(c);
  };
  add("hallo (net.pth: reference_unet, denoising_unet, face_locator, imageproj, audioproj)",
      {"hallo/net.pth", "net.pth"}, "hallo/net.pth");
  add("motion_module", {"motion_module/mm_sd_v15_v2.ckpt", "motion_module/mm_sd_v15_v2.safetensors"},
      "motion_module/mm_sd_v15_v2.ckpt");
  add("vae", {"sd-vae-ft-mse/diffusion_pytorch_model.safetensors", "sd-vae-ft-mse/diffusion_pytorch_model.bin"},
      "sd-vae-ft-mse/diffusion_pytorch_model.safetensors and config.json");
  add("unet config", {"stable-diffusion-v1-5/unet/config.json"}, "stable-diffusion-v1-5/unet/config.json");
  add("wav2vec2", {"wav2vec/wav2vec2-base-960h/model.safetensors", "wav2vec/wav2vec2-base-960h/pytorch_model.bin"},
      "wav2vec/wav2vec2-base-960h/{config.json, model.safetensors}");
  add("face analysis", {"face_analysis/models/scrfd_10g_bnkps.onnx"}, "face_analysis/models/*.onnx (optional)");
  add("emo.json preset", {"emo.json"}, "emo.json (optional; defaults to the hallo preset)");
  return out;
}

}  // namespace emo
