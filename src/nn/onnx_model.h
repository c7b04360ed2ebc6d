// A whole ONNX model read from its protobuf wire format, without protobuf: the graph's nodes (op type, inputs,
// outputs, attributes), its initializers as CPU tensors, and its inputs/outputs. What the ONNX interpreter
// (onnx_interpreter.h) runs. Field numbers follow onnx.proto3 (see onnx_model.cpp).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace emo::nn::onnx {

struct Attribute {
  enum class Type { kUndefined = 0, kFloat = 1, kInt = 2, kString = 3, kTensor = 4, kGraph = 5, kFloats = 6, kInts = 7,
                    kStrings = 8, kTensors = 9 };
  Type type = Type::kUndefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  at::Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

struct Node {
  std::string op_type, name, domain;
  std::vector<std::string> inputs, outputs;  // "" = an omitted optional input
  std::map<std::string, Attribute> attrs;

  bool has(const std::string& a) const { return attrs.count(a) != 0; }
  int64_t i(const std::string& a, int64_t dflt) const;
  float f(const std::string& a, float dflt) const;
  std::string s(const std::string& a, const std::string& dflt) const;
  std::vector<int64_t> ints(const std::string& a, std::vector<int64_t> dflt = {}) const;
};

struct ValueInfo {
  std::string name;
  int32_t elem_type = 0;        // TensorProto.DataType (1 = float)
  std::vector<int64_t> dims;    // -1 = symbolic or unknown
};

struct Model {
  int64_t ir_version = 0;
  int64_t opset = 0;            // version of the default ("" / "ai.onnx") domain
  std::string producer;
  std::vector<Node> nodes;      // in file order (ONNX requires topological order)
  std::map<std::string, at::Tensor> initializers;  // CPU tensors in their ONNX dtype
  std::vector<ValueInfo> inputs;   // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
};

// Parses a ModelProto. `what` names the source in error messages. Throws ModelError on malformed data, external
// data, or a tensor type it does not read.
Model parse_model(const std::vector<unsigned char>& bytes, const std::string& what);
Model load_model(const std::string& path);

}  // namespace emo::nn::onnx
