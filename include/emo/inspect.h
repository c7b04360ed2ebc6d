// `emo inspect`: describe a weight file or a model folder.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace emo {

struct TensorSummary {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

struct FileSummary {
  std::string path;
  std::string format;                 // "safetensors", "torch.save (zip)", ...
  std::vector<TensorSummary> tensors; // sorted by name
  uint64_t total_params = 0;
  uint64_t total_bytes = 0;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Reads and validates one weight file. Throws ModelError.
FileSummary inspect_file(const std::string& path);

struct Component {
  std::string name;      // e.g. "vae", "denoising_unet"
  std::string path;      // where it was found ("" when missing)
  bool found = false;
  std::string detail;    // what was recognised, or what was expected
};

// Recognises the components of a Hallo `pretrained_models/` folder (and the other layouts emo knows).
std::vector<Component> scan_model_folder(const std::string& dir);

}  // namespace emo
