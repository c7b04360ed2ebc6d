// libFuzzer target: the ONNX (protobuf wire format) walker: summarize() and the SCRFD input-shape rewrite
// fix_input_hw(), whose output must itself parse to the same inputs.
#include <stdexcept>
#include <vector>

#include "face/onnx_graph.h"
#include "fuzz_common.h"

namespace onnx = emo::face::onnx;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<unsigned char> bytes(data, data + size);
  onnx::GraphSummary s;
  try {
    s = onnx::summarize(bytes);
  } catch (const std::runtime_error&) {  // documented: malformed data (emo::Error derives from it)
    return 0;
  }
  try {
    auto fixed = onnx::fix_input_hw(bytes, 640, 640);
    auto s2 = onnx::summarize(fixed);  // a rewrite of a readable model must stay readable
    if (s2.inputs.size() != s.inputs.size() || s2.outputs.size() != s.outputs.size()) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
