// Minimal ONNX (protobuf wire format) reader/rewriter: just what insightface's model_zoo looks at
// (graph inputs/outputs with their shapes, the first node names) and the input-shape fix OpenCV 4.6
// needs for SCRFD (symbolic H/W -> fixed), done in memory on a copy of the file's bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace emo::face::onnx {

struct ValueInfo {
  std::string name;
  std::vector<int64_t> dims;  // -1 = symbolic (dim_param) or absent
};

struct GraphSummary {
  std::vector<ValueInfo> inputs;     // graph inputs that are not initializers (onnxruntime's get_inputs())
  std::vector<ValueInfo> outputs;
  std::vector<std::string> node_names;  // first nodes only (up to 8)
};

// Parses `bytes` (a ModelProto); throws std::runtime_error on malformed data.
GraphSummary summarize(const std::vector<unsigned char>& bytes);

// Returns a copy of the model whose first (non-initializer) input has dims 2 and 3 set to h, w (only where
// they are symbolic or 0; fixed dims are kept). Enclosing message lengths are re-encoded.
std::vector<unsigned char> fix_input_hw(const std::vector<unsigned char>& bytes, int64_t h, int64_t w);

std::vector<unsigned char> read_file_bytes(const std::string& path);  // throws ModelError

}  // namespace emo::face::onnx
