// ONNX graph interpreter on libtorch (see onnx_interpreter.h). Each operator follows the ONNX operator
// specification (https://onnx.ai/onnx/operators/) for the opsets exporters write (7..17).
#include "nn/onnx_interpreter.h"

#include <torch/torch.h>

#include <functional>
#include <set>
#include <unordered_map>

#include "emo/error.h"

namespace emo::nn::onnx {

namespace {

using Tensors = std::vector<at::Tensor>;
using Op = std::function<Tensors(const Node&, const Tensors&, int64_t opset)>;

std::vector<int64_t> to_ints(const at::Tensor& t) {
  auto c = t.to(at::kCPU).to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

int64_t norm_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

const at::Tensor& in(const Tensors& x, size_t k, const Node& n) {
  if (k >= x.size() || !x[k].defined())
    throw std::runtime_error(n.op_type + " '" + n.name + "': input " + std::to_string(k) + " is missing");
  return x[k];
}
bool given(const Tensors& x, size_t k) { return k < x.size() && x[k].defined(); }

// Conv / ConvTranspose padding: ONNX pads are [x1_begin, x2_begin, ..., x1_end, x2_end, ...].
struct Pads {
  std::vector<int64_t> sym;        // symmetric part, passed to the torch op
  std::vector<int64_t> extra_b, extra_e;  // what is left over on each side
};
Pads split_pads(const std::vector<int64_t>& pads, size_t spatial) {
  Pads p;
  p.sym.assign(spatial, 0);
  p.extra_b.assign(spatial, 0);
  p.extra_e.assign(spatial, 0);
  if (pads.empty()) return p;
  for (size_t d = 0; d < spatial; ++d) {
    const int64_t b = pads[d], e = pads[d + spatial];
    p.sym[d] = std::min(b, e);
    p.extra_b[d] = b - p.sym[d];
    p.extra_e[d] = e - p.sym[d];
  }
  return p;
}

std::vector<int64_t> auto_pads(const Node& n, const at::Tensor& x, const std::vector<int64_t>& k,
                               const std::vector<int64_t>& s, const std::vector<int64_t>& d) {
  const std::string ap = n.s("auto_pad", "NOTSET");
  const size_t sp = k.size();
  if (ap == "NOTSET" || ap.empty()) return n.ints("pads", std::vector<int64_t>(2 * sp, 0));
  std::vector<int64_t> pads(2 * sp, 0);
  if (ap == "VALID") return pads;
  for (size_t i = 0; i < sp; ++i) {  // SAME_UPPER / SAME_LOWER
    const int64_t in_sz = x.size(2 + i), out = (in_sz + s[i] - 1) / s[i];
    const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_sz);
    const int64_t small = total / 2, big = total - small;
    pads[i] = ap == "SAME_UPPER" ? small : big;
    pads[i + sp] = ap == "SAME_UPPER" ? big : small;
  }
  return pads;
}

Tensors conv(const Node& n, const Tensors& x, int64_t) {
  const auto& X = in(x, 0, n);
  const auto& W = in(x, 1, n);
  const size_t sp = static_cast<size_t>(W.dim() - 2);
  std::vector<int64_t> k(W.sizes().begin() + 2, W.sizes().end());
  auto s = n.ints("strides", std::vector<int64_t>(sp, 1));
  auto d = n.ints("dilations", std::vector<int64_t>(sp, 1));
  auto p = split_pads(auto_pads(n, X, k, s, d), sp);
  at::Tensor input = X;
  bool extra = false;
  for (size_t i = 0; i < sp; ++i) extra = extra || p.extra_b[i] || p.extra_e[i];
  if (extra) {  // asymmetric padding: pad the remainder explicitly (torch's pad takes the last dim first)
    std::vector<int64_t> fp;
    for (size_t i = sp; i-- > 0;) {
      fp.push_back(p.extra_b[i]);
      fp.push_back(p.extra_e[i]);
    }
    input = at::constant_pad_nd(X, fp, 0);
  }
  at::Tensor B = given(x, 2) ? x[2] : at::Tensor();
  return {at::convolution(input, W, B, s, p.sym, d, false, std::vector<int64_t>(sp, 0), n.i("group", 1))};
}

Tensors conv_transpose(const Node& n, const Tensors& x, int64_t) {
  const auto& X = in(x, 0, n);
  const auto& W = in(x, 1, n);  // [C_in, C_out / group, k...]
  const size_t sp = static_cast<size_t>(W.dim() - 2);
  auto s = n.ints("strides", std::vector<int64_t>(sp, 1));
  auto d = n.ints("dilations", std::vector<int64_t>(sp, 1));
  auto op = n.ints("output_padding", std::vector<int64_t>(sp, 0));
  if (n.has("output_shape")) throw std::runtime_error("ConvTranspose '" + n.name + "': output_shape is not supported");
  const std::string ap = n.s("auto_pad", "NOTSET");
  if (ap != "NOTSET" && !ap.empty() && ap != "VALID")
    throw std::runtime_error("ConvTranspose '" + n.name + "': auto_pad " + ap + " is not supported");
  auto p = split_pads(n.ints("pads", std::vector<int64_t>(2 * sp, 0)), sp);
  at::Tensor B = given(x, 2) ? x[2] : at::Tensor();
  at::Tensor y = at::convolution(X, W, B, s, p.sym, d, true, op, n.i("group", 1));
  for (size_t i = 0; i < sp; ++i)  // asymmetric pads crop the output further
    if (p.extra_b[i] || p.extra_e[i])
      y = y.narrow(static_cast<int64_t>(2 + i), p.extra_b[i], y.size(2 + i) - p.extra_b[i] - p.extra_e[i]);
  return {y};
}

Tensors batch_norm(const Node& n, const Tensors& x, int64_t) {
  // inference form: (x - mean) / sqrt(var + eps) * scale + bias over axis 1
  return {at::batch_norm(in(x, 0, n), in(x, 1, n), in(x, 2, n), in(x, 3, n), in(x, 4, n), false, 0.0,
                         n.f("epsilon", 1e-5f), false)};
}

Tensors instance_norm(const Node& n, const Tensors& x, int64_t) {
  return {at::instance_norm(in(x, 0, n), in(x, 1, n), in(x, 2, n), {}, {}, true, 0.0, n.f("epsilon", 1e-5f), false)};
}

Tensors gemm(const Node& n, const Tensors& x, int64_t) {
  at::Tensor A = in(x, 0, n), B = in(x, 1, n);
  if (n.i("transA", 0)) A = A.t();
  if (n.i("transB", 0)) B = B.t();
  at::Tensor y = at::mm(A, B) * n.f("alpha", 1.0f);
  if (given(x, 2)) y = y + x[2] * n.f("beta", 1.0f);
  return {y};
}

Tensors reshape(const Node& n, const Tensors& x, int64_t opset) {
  const auto& X = in(x, 0, n);
  std::vector<int64_t> shape = opset >= 5 ? to_ints(in(x, 1, n)) : n.ints("shape");
  const bool allowzero = n.i("allowzero", 0) != 0;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 0 && !allowzero) shape[i] = X.size(static_cast<int64_t>(i));
  return {X.reshape(shape)};
}

Tensors transpose(const Node& n, const Tensors& x, int64_t) {
  const auto& X = in(x, 0, n);
  std::vector<int64_t> perm = n.ints("perm");
  if (perm.empty())
    for (int64_t i = X.dim() - 1; i >= 0; --i) perm.push_back(i);
  return {X.permute(perm)};
}

std::vector<int64_t> axes_of(const Node& n, const Tensors& x, int64_t opset, int64_t from_opset, size_t input) {
  if (opset >= from_opset) return given(x, input) ? to_ints(x[input]) : std::vector<int64_t>{};
  return n.ints("axes");
}

Tensors unsqueeze(const Node& n, const Tensors& x, int64_t opset) {
  at::Tensor y = in(x, 0, n);
  auto axes = axes_of(n, x, opset, 13, 1);
  const int64_t rank = y.dim() + static_cast<int64_t>(axes.size());
  for (auto& a : axes) a = norm_axis(a, rank);
  std::sort(axes.begin(), axes.end());
  for (int64_t a : axes) y = y.unsqueeze(a);
  return {y};
}

Tensors squeeze(const Node& n, const Tensors& x, int64_t opset) {
  at::Tensor y = in(x, 0, n);
  auto axes = axes_of(n, x, opset, 13, 1);
  if (axes.empty()) return {y.squeeze()};
  for (auto& a : axes) a = norm_axis(a, y.dim());
  std::sort(axes.rbegin(), axes.rend());
  for (int64_t a : axes) y = y.squeeze(a);
  return {y};
}

Tensors concat(const Node& n, const Tensors& x, int64_t) {
  std::vector<at::Tensor> parts;
  for (const auto& t : x)
    if (t.defined()) parts.push_back(t);
  return {at::cat(parts, n.i("axis", 0))};
}

Tensors slice(const Node& n, const Tensors& x, int64_t opset) {
  at::Tensor y = in(x, 0, n);
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset >= 10) {
    starts = to_ints(in(x, 1, n));
    ends = to_ints(in(x, 2, n));
    if (given(x, 3)) axes = to_ints(x[3]);
    if (given(x, 4)) steps = to_ints(x[4]);
  } else {
    starts = n.ints("starts");
    ends = n.ints("ends");
    axes = n.ints("axes");
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t a = norm_axis(axes[i], y.dim()), dim = y.size(a), st = steps[i];
    auto clampi = [&](int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(hi, v)); };
    int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (st > 0) {
      s = clampi(s, 0, dim);
      e = clampi(e, 0, dim);
      y = y.slice(a, s, std::max(s, e), st);
    } else {  // negative step: flip, then slice forward
      s = clampi(s, 0, dim - 1);
      e = clampi(e, -1, dim - 1);
      const int64_t count = std::max<int64_t>(0, (s - e + (-st) - 1) / (-st));
      y = y.flip({a}).slice(a, dim - 1 - s, dim - 1 - s + count * (-st), -st);
    }
  }
  return {y};
}

Tensors gather(const Node& n, const Tensors& x, int64_t) {
  const auto& X = in(x, 0, n);
  const int64_t axis = norm_axis(n.i("axis", 0), X.dim());
  at::Tensor idx = in(x, 1, n).to(at::kLong);
  idx = at::where(idx < 0, idx + X.size(axis), idx);
  if (idx.dim() == 0) return {X.select(axis, idx.item<int64_t>())};
  at::Tensor flat = X.index_select(axis, idx.reshape({-1}).to(X.device()));
  std::vector<int64_t> shape(X.sizes().begin(), X.sizes().begin() + axis);
  for (int64_t s : idx.sizes()) shape.push_back(s);
  shape.insert(shape.end(), X.sizes().begin() + axis + 1, X.sizes().end());
  return {flat.reshape(shape)};
}

at::ScalarType cast_type(int64_t to) {
  switch (to) {
    case 1: return at::kFloat;
    case 2: return at::kByte;
    case 3: return at::kChar;
    case 6: return at::kInt;
    case 7: return at::kLong;
    case 9: return at::kBool;
    case 10: return at::kHalf;
    case 11: return at::kDouble;
    default: throw std::runtime_error("Cast to ONNX type " + std::to_string(to) + " is not supported");
  }
}

Tensors pad(const Node& n, const Tensors& x, int64_t opset) {
  const auto& X = in(x, 0, n);
  std::vector<int64_t> pads = opset >= 11 ? to_ints(in(x, 1, n)) : n.ints("pads");
  double value = opset >= 11 ? (given(x, 2) ? x[2].item<double>() : 0.0) : n.f("value", 0.0f);
  const std::string mode = n.s("mode", "constant");
  const int64_t r = X.dim();
  std::vector<int64_t> tp;  // torch order: last dim first, (begin, end)
  for (int64_t d = r - 1; d >= 0; --d) {
    tp.push_back(pads[d]);
    tp.push_back(pads[d + r]);
  }
  while (tp.size() >= 2 && tp[tp.size() - 1] == 0 && tp[tp.size() - 2] == 0) tp.resize(tp.size() - 2);
  if (mode == "constant") return {at::constant_pad_nd(X, tp, value)};
  if (mode == "reflect") return {at::pad(X, tp, "reflect")};
  if (mode == "edge") return {at::pad(X, tp, "replicate")};
  throw std::runtime_error("Pad mode " + mode + " is not supported");
}

Tensors reduce_mean(const Node& n, const Tensors& x, int64_t opset) {
  const auto& X = in(x, 0, n);
  auto axes = axes_of(n, x, opset, 18, 1);
  const bool keep = n.i("keepdims", 1) != 0;
  if (axes.empty()) {
    for (int64_t i = 0; i < X.dim(); ++i) axes.push_back(i);
  }
  return {X.mean(axes, keep)};
}

Tensors split(const Node& n, const Tensors& x, int64_t opset) {
  const auto& X = in(x, 0, n);
  const int64_t axis = norm_axis(n.i("axis", 0), X.dim());
  std::vector<int64_t> sizes = opset >= 13 ? (given(x, 1) ? to_ints(x[1]) : std::vector<int64_t>{}) : n.ints("split");
  if (sizes.empty()) {
    const int64_t k = static_cast<int64_t>(n.outputs.size());
    sizes.assign(static_cast<size_t>(k), X.size(axis) / k);
  }
  auto parts = X.split_with_sizes(sizes, axis);
  return Tensors(parts.begin(), parts.end());
}

Tensors constant(const Node& n, const Tensors&, int64_t) {
  if (n.has("value")) return {n.attrs.at("value").t};
  if (n.has("value_float")) return {at::scalar_tensor(n.f("value_float", 0), at::kFloat)};
  if (n.has("value_int")) return {at::scalar_tensor(n.i("value_int", 0), at::kLong)};
  if (n.has("value_floats")) return {at::tensor(n.attrs.at("value_floats").floats, at::kFloat)};
  if (n.has("value_ints")) return {at::tensor(n.attrs.at("value_ints").ints, at::kLong)};
  throw std::runtime_error("Constant '" + n.name + "' has no supported value attribute");
}

template <class F>
Op unary(F f) {
  return [f](const Node& n, const Tensors& x, int64_t) -> Tensors { return {f(in(x, 0, n), n)}; };
}
template <class F>
Op binary(F f) {
  return [f](const Node& n, const Tensors& x, int64_t) -> Tensors { return {f(in(x, 0, n), in(x, 1, n))}; };
}

const std::unordered_map<std::string, Op>& ops() {
  static const std::unordered_map<std::string, Op> table = {
      {"Conv", conv},
      {"ConvTranspose", conv_transpose},
      {"BatchNormalization", batch_norm},
      {"InstanceNormalization", instance_norm},
      {"Gemm", gemm},
      {"MatMul", binary([](const at::Tensor& a, const at::Tensor& b) { return at::matmul(a, b); })},
      {"Add", binary([](const at::Tensor& a, const at::Tensor& b) { return a + b; })},
      {"Sub", binary([](const at::Tensor& a, const at::Tensor& b) { return a - b; })},
      {"Mul", binary([](const at::Tensor& a, const at::Tensor& b) { return a * b; })},
      {"Div", binary([](const at::Tensor& a, const at::Tensor& b) {
         return a.is_floating_point() ? a / b : at::div(a, b, "trunc");
       })},
      {"Pow", binary([](const at::Tensor& a, const at::Tensor& b) { return at::pow(a, b.to(a.scalar_type())); })},
      {"Relu", unary([](const at::Tensor& t, const Node&) { return at::relu(t); })},
      {"LeakyRelu", unary([](const at::Tensor& t, const Node& n) { return at::leaky_relu(t, n.f("alpha", 0.01f)); })},
      {"Elu", unary([](const at::Tensor& t, const Node& n) { return at::elu(t, n.f("alpha", 1.0f)); })},
      {"Sigmoid", unary([](const at::Tensor& t, const Node&) { return at::sigmoid(t); })},
      {"Tanh", unary([](const at::Tensor& t, const Node&) { return at::tanh(t); })},
      {"Erf", unary([](const at::Tensor& t, const Node&) { return at::erf(t); })},
      {"Sqrt", unary([](const at::Tensor& t, const Node&) { return at::sqrt(t); })},
      {"Exp", unary([](const at::Tensor& t, const Node&) { return at::exp(t); })},
      {"Neg", unary([](const at::Tensor& t, const Node&) { return at::neg(t); })},
      {"Abs", unary([](const at::Tensor& t, const Node&) { return at::abs(t); })},
      {"Reciprocal", unary([](const at::Tensor& t, const Node&) { return at::reciprocal(t); })},
      {"Identity", unary([](const at::Tensor& t, const Node&) { return t; })},
      {"Dropout", unary([](const at::Tensor& t, const Node&) { return t; })},  // inference: identity
      {"Softmax", unary([](const at::Tensor& t, const Node& n) { return at::softmax(t, n.i("axis", -1)); })},
      {"Flatten", unary([](const at::Tensor& t, const Node& n) {
         const int64_t a = norm_axis(n.i("axis", 1), t.dim());
         int64_t outer = 1;
         for (int64_t i = 0; i < a; ++i) outer *= t.size(i);
         return t.reshape({outer, -1});
       })},
      {"Cast", unary([](const at::Tensor& t, const Node& n) { return t.to(cast_type(n.i("to", 1))); })},
      {"Shape", unary([](const at::Tensor& t, const Node&) { return at::tensor(t.sizes().vec(), at::kLong); })},
      {"Clip", [](const Node& n, const Tensors& x, int64_t opset) -> Tensors {
         const auto& X = in(x, 0, n);
         if (opset < 11) return {at::clamp(X, n.f("min", -3.4e38f), n.f("max", 3.4e38f))};
         at::Tensor y = X;
         if (given(x, 1)) y = at::clamp_min(y, x[1].item());
         if (given(x, 2)) y = at::clamp_max(y, x[2].item());
         return {y};
       }},
      {"Reshape", reshape},
      {"Transpose", transpose},
      {"Unsqueeze", unsqueeze},
      {"Squeeze", squeeze},
      {"Concat", concat},
      {"Slice", slice},
      {"Gather", gather},
      {"Pad", pad},
      {"ReduceMean", reduce_mean},
      {"Split", split},
      {"Constant", constant},
  };
  return table;
}

}  // namespace

bool Interpreter::supports(const std::string& op_type) { return ops().count(op_type) != 0; }

Interpreter::Interpreter(Model model, const std::string& what, const std::string& device)
    : model_(std::move(model)), what_(what) {
  const torch::Device dev(device);
  device_ = device;
  std::set<std::string> unknown;
  for (const auto& n : model_.nodes)
    if ((!n.domain.empty() && n.domain != "ai.onnx") || !supports(n.op_type))
      unknown.insert(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type);
  if (!unknown.empty()) {
    std::string list;
    for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    throw ModelError(what_ + ": ONNX operator(s) not supported by emo's interpreter: " + list);
  }
  for (const auto& [name, t] : model_.initializers)
    consts_[name] = (t.is_floating_point() ? t.to(at::kFloat) : t).to(dev);
  // last use of every value, so that intermediates are freed as soon as possible
  std::map<std::string, size_t> last;
  for (size_t k = 0; k < model_.nodes.size(); ++k)
    for (const auto& i : model_.nodes[k].inputs)
      if (!i.empty()) last[i] = k;
  std::set<std::string> keep;
  for (const auto& o : model_.outputs) keep.insert(o.name);
  release_.assign(model_.nodes.size(), {});
  for (const auto& [name, k] : last)
    if (!keep.count(name) && !consts_.count(name)) release_[k].push_back(name);
}

Interpreter Interpreter::load(const std::string& path, const std::string& device) {
  return Interpreter(load_model(path), path, device);
}

std::vector<at::Tensor> Interpreter::run(const std::map<std::string, at::Tensor>& inputs) const {
  std::unordered_map<std::string, at::Tensor> env;
  for (const auto& v : model_.inputs) {
    auto it = inputs.find(v.name);
    if (it == inputs.end()) throw ModelError(what_ + ": graph input '" + v.name + "' was not given");
    env[v.name] = it->second;
  }
  auto value = [&](const std::string& name) -> at::Tensor {
    if (name.empty()) return {};
    auto it = env.find(name);
    if (it != env.end()) return it->second;
    auto c = consts_.find(name);
    if (c != consts_.end()) return c->second;
    throw ModelError(what_ + ": value '" + name + "' is used before it is computed");
  };
  const auto& table = ops();
  for (size_t k = 0; k < model_.nodes.size(); ++k) {
    const Node& n = model_.nodes[k];
    Tensors args;
    args.reserve(n.inputs.size());
    for (const auto& i : n.inputs) args.push_back(value(i));
    Tensors out;
    try {
      out = table.at(n.op_type)(n, args, model_.opset);
    } catch (const ModelError&) {
      throw;
    } catch (const std::exception& e) {
      std::string shapes;
      for (const auto& a : args) shapes += (shapes.empty() ? "" : ", ") + (a.defined() ? c10::str(a.sizes()) : std::string("-"));
      throw ModelError(what_ + ": node " + std::to_string(k) + " (" + n.op_type + " '" + n.name + "', inputs " + shapes +
                       ") failed: " + e.what());
    }
    if (n.op_type == "Constant" && !out.empty() && out[0].is_floating_point())  // data constants join the weights' device
      out[0] = out[0].to(at::kFloat).to(torch::Device(device_));
    for (size_t o = 0; o < n.outputs.size() && o < out.size(); ++o)
      if (!n.outputs[o].empty()) env[n.outputs[o]] = std::move(out[o]);
    for (const auto& r : release_[k]) env.erase(r);
  }
  std::vector<at::Tensor> result;
  for (const auto& o : model_.outputs) result.push_back(value(o.name));
  return result;
}

at::Tensor Interpreter::run(const at::Tensor& input) const {
  if (model_.inputs.empty()) throw ModelError(what_ + ": the graph has no inputs");
  return run({{model_.inputs[0].name, input}}).at(0);
}

}  // namespace emo::nn::onnx
