// ONNX ModelProto reader (see onnx_model.h). Field numbers (onnx.proto3):
//   ModelProto: ir_version 1, producer_name 2, graph 7, opset_import 8 (OperatorSetIdProto: domain 1, version 2)
//   GraphProto: node 1, initializer 5, input 11, output 12
//   NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7
//   AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20
//   TensorProto: dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8, raw_data 9,
//                double_data 10, external_data 13, data_location 14
//   ValueInfoProto: name 1, type 2 -> TypeProto.tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1
#include "nn/onnx_model.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include "emo/error.h"

namespace emo::nn::onnx {

namespace {

// One protobuf message: a byte range walked field by field.
struct Reader {
  const unsigned char* p;
  size_t n;
  size_t pos = 0;

  bool done() const { return pos >= n; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= n) throw std::runtime_error("truncated varint");
      const unsigned char b = p[pos++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("varint too long");
  }
  // Reads a tag; returns false at the end.
  bool next(uint32_t& number, uint32_t& wire) {
    if (done()) return false;
    const uint64_t tag = varint();
    number = static_cast<uint32_t>(tag >> 3);
    wire = static_cast<uint32_t>(tag & 7);
    return true;
  }
  Reader sub() {  // payload of a length-delimited field
    const uint64_t len = varint();
    if (len > n - pos) throw std::runtime_error("length-delimited field past the end");
    Reader r{p + pos, static_cast<size_t>(len)};
    pos += static_cast<size_t>(len);
    return r;
  }
  std::string str() {
    Reader r = sub();
    return std::string(reinterpret_cast<const char*>(r.p), r.n);
  }
  uint32_t fixed32() {
    if (n - pos < 4) throw std::runtime_error("truncated fixed32");
    uint32_t v;
    std::memcpy(&v, p + pos, 4);
    pos += 4;
    return v;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: if (n - pos < 8) throw std::runtime_error("truncated fixed64"); pos += 8; break;
      case 2: sub(); break;
      case 5: fixed32(); break;
      default: throw std::runtime_error("unsupported wire type " + std::to_string(wire));
    }
  }
};

float as_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Repeated scalar fields come packed (wire 2) or one by one.
void read_ints(Reader& r, uint32_t wire, std::vector<int64_t>& out) {
  if (wire == 2) {
    Reader s = r.sub();
    while (!s.done()) out.push_back(static_cast<int64_t>(s.varint()));
  } else {
    out.push_back(static_cast<int64_t>(r.varint()));
  }
}
void read_floats(Reader& r, uint32_t wire, std::vector<float>& out) {
  if (wire == 2) {
    Reader s = r.sub();
    while (!s.done()) out.push_back(as_float(s.fixed32()));
  } else {
    out.push_back(as_float(r.fixed32()));
  }
}

at::ScalarType onnx_dtype(int32_t t, const std::string& name) {
  switch (t) {
    case 1: return at::kFloat;
    case 2: return at::kByte;
    case 3: return at::kChar;
    case 5: return at::kShort;
    case 6: return at::kInt;
    case 7: return at::kLong;
    case 9: return at::kBool;
    case 10: return at::kHalf;
    case 11: return at::kDouble;
    case 16: return at::kBFloat16;
    default: throw std::runtime_error("tensor '" + name + "' has ONNX data type " + std::to_string(t) + ", not supported");
  }
}

at::Tensor parse_tensor(Reader r, std::string* name_out) {
  std::vector<int64_t> dims, i64;
  std::vector<float> f32;
  std::vector<double> f64;
  int32_t data_type = 0;
  std::string name, raw;
  bool has_raw = false, external = false;
  uint32_t num, wire;
  while (r.next(num, wire)) {
    if (num == 1) read_ints(r, wire, dims);
    else if (num == 2 && wire == 0) data_type = static_cast<int32_t>(r.varint());
    else if (num == 4) read_floats(r, wire, f32);
    else if ((num == 5 || num == 7) && wire != 1) read_ints(r, wire, i64);  // int32_data (also bool/int8/fp16 bits), int64_data
    else if (num == 8 && wire == 2) name = r.str();
    else if (num == 9 && wire == 2) { raw = r.str(); has_raw = true; }
    else if (num == 10 && wire == 2) {
      Reader s = r.sub();
      while (!s.done()) {
        if (s.n - s.pos < 8) throw std::runtime_error("truncated double_data");
        double d;
        std::memcpy(&d, s.p + s.pos, 8);
        s.pos += 8;
        f64.push_back(d);
      }
    } else if (num == 13 && wire == 2) { external = true; r.skip(wire); }
    else if (num == 14 && wire == 0) external = external || r.varint() == 1;
    else r.skip(wire);
  }
  if (name_out) *name_out = name;
  if (external) throw std::runtime_error("tensor '" + name + "' stores its data outside the file (external data is not supported)");
  const at::ScalarType dt = onnx_dtype(data_type, name);
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0) throw std::runtime_error("tensor '" + name + "' has a negative dimension");
    if (d > 0 && numel > (int64_t{1} << 40) / d) throw std::runtime_error("tensor '" + name + "' is implausibly large");
    numel *= d;
  }
  // the data must be there before anything is allocated (a corrupt shape must not allocate gigabytes)
  const size_t elem = c10::elementSize(dt);
  const size_t bytes = static_cast<size_t>(numel) * elem;
  const size_t have = has_raw ? raw.size() : (dt == at::kFloat ? f32.size() * 4 : dt == at::kDouble ? f64.size() * 8 : i64.size() * elem);
  if (have != bytes)
    throw std::runtime_error("tensor '" + name + "': its data holds " + std::to_string(have) + " bytes, its shape needs " +
                             std::to_string(bytes));
  auto opts = at::TensorOptions().dtype(dt);
  at::Tensor t = at::empty(dims, opts);
  if (has_raw) {
    if (raw.size() != bytes)
      throw std::runtime_error("tensor '" + name + "': raw_data holds " + std::to_string(raw.size()) + " bytes, its shape needs " +
                               std::to_string(bytes));
    if (bytes) std::memcpy(t.data_ptr(), raw.data(), bytes);  // ONNX raw data is little-endian, as this machine
  } else if (dt == at::kFloat) {
    if (static_cast<int64_t>(f32.size()) != numel) throw std::runtime_error("tensor '" + name + "': float_data size mismatch");
    if (numel) std::memcpy(t.data_ptr(), f32.data(), bytes);
  } else if (dt == at::kDouble) {
    if (static_cast<int64_t>(f64.size()) != numel) throw std::runtime_error("tensor '" + name + "': double_data size mismatch");
    if (numel) std::memcpy(t.data_ptr(), f64.data(), bytes);
  } else {
    if (static_cast<int64_t>(i64.size()) != numel) throw std::runtime_error("tensor '" + name + "': integer data size mismatch");
    if (dt == at::kHalf || dt == at::kBFloat16) {  // int32_data holds the 16-bit patterns
      auto bits = at::empty(dims, at::kShort);
      auto* b = bits.data_ptr<int16_t>();
      for (int64_t k = 0; k < numel; ++k) b[k] = static_cast<int16_t>(i64[k]);
      t = bits.view(dt);
    } else {
      auto all = at::tensor(i64, at::kLong);
      t = all.reshape(dims).to(dt);
    }
  }
  return t;
}

ValueInfo parse_value_info(Reader r) {
  ValueInfo v;
  uint32_t num, wire;
  while (r.next(num, wire)) {
    if (num == 1 && wire == 2) v.name = r.str();
    else if (num == 2 && wire == 2) {
      Reader type = r.sub();
      uint32_t tn, tw;
      while (type.next(tn, tw)) {
        if (tn != 1 || tw != 2) { type.skip(tw); continue; }
        Reader tensor = type.sub();
        uint32_t en, ew;
        while (tensor.next(en, ew)) {
          if (en == 1 && ew == 0) v.elem_type = static_cast<int32_t>(tensor.varint());
          else if (en == 2 && ew == 2) {
            Reader shape = tensor.sub();
            uint32_t sn, sw;
            while (shape.next(sn, sw)) {
              if (sn != 1 || sw != 2) { shape.skip(sw); continue; }
              Reader dim = shape.sub();
              int64_t d = -1;
              uint32_t dn, dw;
              while (dim.next(dn, dw)) {
                if (dn == 1 && dw == 0) d = static_cast<int64_t>(dim.varint());
                else dim.skip(dw);
              }
              v.dims.push_back(d);
            }
          } else tensor.skip(ew);
        }
      }
    } else r.skip(wire);
  }
  return v;
}

Attribute parse_attribute(Reader r, std::string& name) {
  Attribute a;
  uint32_t num, wire;
  while (r.next(num, wire)) {
    if (num == 1 && wire == 2) name = r.str();
    else if (num == 2 && wire == 5) a.f = as_float(r.fixed32());
    else if (num == 3 && wire == 0) a.i = static_cast<int64_t>(r.varint());
    else if (num == 4 && wire == 2) a.s = r.str();
    else if (num == 5 && wire == 2) a.t = parse_tensor(r.sub(), nullptr);
    else if (num == 7) read_floats(r, wire, a.floats);
    else if (num == 8) read_ints(r, wire, a.ints);
    else if (num == 20 && wire == 0) a.type = static_cast<Attribute::Type>(r.varint());
    else r.skip(wire);
  }
  return a;
}

Node parse_node(Reader r) {
  Node node;
  uint32_t num, wire;
  while (r.next(num, wire)) {
    if (num == 1 && wire == 2) node.inputs.push_back(r.str());
    else if (num == 2 && wire == 2) node.outputs.push_back(r.str());
    else if (num == 3 && wire == 2) node.name = r.str();
    else if (num == 4 && wire == 2) node.op_type = r.str();
    else if (num == 5 && wire == 2) {
      std::string an;
      Attribute a = parse_attribute(r.sub(), an);
      node.attrs[an] = std::move(a);
    } else if (num == 7 && wire == 2) node.domain = r.str();
    else r.skip(wire);
  }
  return node;
}

}  // namespace

int64_t Node::i(const std::string& a, int64_t dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.i;
}
float Node::f(const std::string& a, float dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.f;
}
std::string Node::s(const std::string& a, const std::string& dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.s;
}
std::vector<int64_t> Node::ints(const std::string& a, std::vector<int64_t> dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.ints;
}

Model parse_model(const std::vector<unsigned char>& bytes, const std::string& what) {
  Model m;
  try {
    Reader r{bytes.data(), bytes.size()};
    uint32_t num, wire;
    bool graph_seen = false;
    while (r.next(num, wire)) {
      if (num == 1 && wire == 0) m.ir_version = static_cast<int64_t>(r.varint());
      else if (num == 2 && wire == 2) m.producer = r.str();
      else if (num == 8 && wire == 2) {
        Reader os = r.sub();
        std::string domain;
        int64_t version = 0;
        uint32_t on, ow;
        while (os.next(on, ow)) {
          if (on == 1 && ow == 2) domain = os.str();
          else if (on == 2 && ow == 0) version = static_cast<int64_t>(os.varint());
          else os.skip(ow);
        }
        if (domain.empty() || domain == "ai.onnx") m.opset = version;
      } else if (num == 7 && wire == 2) {
        graph_seen = true;
        Reader g = r.sub();
        std::vector<ValueInfo> inputs;
        uint32_t gn, gw;
        while (g.next(gn, gw)) {
          if (gn == 1 && gw == 2) m.nodes.push_back(parse_node(g.sub()));
          else if (gn == 5 && gw == 2) {
            std::string name;
            at::Tensor t = parse_tensor(g.sub(), &name);
            m.initializers[name] = t;
          } else if (gn == 11 && gw == 2) inputs.push_back(parse_value_info(g.sub()));
          else if (gn == 12 && gw == 2) m.outputs.push_back(parse_value_info(g.sub()));
          else g.skip(gw);
        }
        for (auto& v : inputs)
          if (!m.initializers.count(v.name)) m.inputs.push_back(std::move(v));
      } else r.skip(wire);
    }
    if (!graph_seen) throw std::runtime_error("no graph in the model");
    if (m.nodes.empty()) throw std::runtime_error("the graph has no nodes");
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {
    throw ModelError(what + ": not a readable ONNX model (" + e.what() + ")");
  }
  return m;
}

Model load_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot open ONNX file");
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.empty()) throw ModelError(path + ": empty ONNX file");
  return parse_model(b, path);
}

}  // namespace emo::nn::onnx
