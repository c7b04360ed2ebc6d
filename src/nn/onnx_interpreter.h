// Runs an ONNX graph with libtorch, node by node (a generic interpreter over onnx_model.h's graph). Covers the
// operators of convolutional exports such as UVR's MDX-Net files (Conv, ConvTranspose, BatchNormalization, MatMul,
// Gemm, elementwise arithmetic and activations, Transpose/Reshape/Concat/Slice/...); an operator it does not know
// is a ModelError naming it, raised at load time. Intermediate values are released after their last use.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/onnx_model.h"

namespace emo::nn::onnx {

class Interpreter {
 public:
  // Moves the initializers to `device` (floating point ones as float32). `what` names the model in errors.
  Interpreter(Model model, const std::string& what, const std::string& device = "cpu");
  static Interpreter load(const std::string& path, const std::string& device = "cpu");

  // Graph inputs by name (each must be given); returns the graph outputs in order.
  std::vector<at::Tensor> run(const std::map<std::string, at::Tensor>& inputs) const;
  // Single input, first output.
  at::Tensor run(const at::Tensor& input) const;

  const Model& model() const { return model_; }
  static bool supports(const std::string& op_type);

 private:
  Model model_;
  std::string what_;
  std::string device_;
  std::map<std::string, at::Tensor> consts_;       // initializers on the device
  std::vector<std::vector<std::string>> release_;   // per node: values whose last use it is
};

}  // namespace emo::nn::onnx
