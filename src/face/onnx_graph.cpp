// ONNX protobuf walking for insightface's model routing and the SCRFD input fix (see onnx_graph.h).
// Field numbers (onnx.proto3): ModelProto.graph = 7; GraphProto.node = 1, initializer = 5, input = 11,
// output = 12; NodeProto.name = 3; TensorProto.name = 8; ValueInfoProto.name = 1, type = 2;
// TypeProto.tensor_type = 1; TypeProto.Tensor.shape = 2; TensorShapeProto.dim = 1;
// Dimension.dim_value = 1 (varint), dim_param = 2 (string).
#include "face/onnx_graph.h"

#include <fstream>
#include <set>
#include <stdexcept>

#include "emo/error.h"

namespace emo::face::onnx {

namespace {

using Bytes = std::vector<unsigned char>;

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t varint = 0;        // wire 0
  size_t begin = 0, end = 0;  // whole field (tag included) in the parent buffer
  size_t pbegin = 0, pend = 0;  // payload (wire 2)
};

uint64_t read_varint(const unsigned char* p, size_t n, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= n) throw std::runtime_error("truncated varint");
    unsigned char b = p[pos++];
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::runtime_error("varint too long");
}

void write_varint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<unsigned char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<unsigned char>(v));
}

// Splits one message into its fields.
std::vector<Field> fields(const unsigned char* p, size_t n) {
  std::vector<Field> out;
  size_t pos = 0;
  while (pos < n) {
    Field f;
    f.begin = pos;
    uint64_t tag = read_varint(p, n, pos);
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<uint32_t>(tag & 7);
    switch (f.wire) {
      case 0: f.varint = read_varint(p, n, pos); break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2: {
        uint64_t len = read_varint(p, n, pos);
        if (len > n - pos) throw std::runtime_error("length-delimited field past the end");
        f.pbegin = pos;
        f.pend = pos + static_cast<size_t>(len);
        pos = f.pend;
        break;
      }
      default: throw std::runtime_error("unsupported wire type " + std::to_string(f.wire));
    }
    if (pos > n) throw std::runtime_error("field past the end");
    f.end = pos;
    out.push_back(f);
  }
  return out;
}

std::string str(const unsigned char* p, const Field& f) { return std::string(reinterpret_cast<const char*>(p + f.pbegin), f.pend - f.pbegin); }

const Field* find(const std::vector<Field>& fs, uint32_t number) {
  for (const auto& f : fs)
    if (f.number == number && f.wire == 2) return &f;
  return nullptr;
}

ValueInfo parse_value_info(const unsigned char* p, const Field& vi) {
  ValueInfo v;
  auto fs = fields(p + vi.pbegin, vi.pend - vi.pbegin);
  const unsigned char* q = p + vi.pbegin;
  if (auto* n = find(fs, 1)) v.name = str(q, *n);
  auto* type = find(fs, 2);
  if (!type) return v;
  auto tfs = fields(q + type->pbegin, type->pend - type->pbegin);
  const unsigned char* r = q + type->pbegin;
  auto* tensor = find(tfs, 1);
  if (!tensor) return v;
  auto tefs = fields(r + tensor->pbegin, tensor->pend - tensor->pbegin);
  const unsigned char* s = r + tensor->pbegin;
  auto* shape = find(tefs, 2);
  if (!shape) return v;
  const unsigned char* t = s + shape->pbegin;
  for (const auto& d : fields(t, shape->pend - shape->pbegin)) {
    if (d.number != 1 || d.wire != 2) continue;
    int64_t dim = -1;
    for (const auto& df : fields(t + d.pbegin, d.pend - d.pbegin))
      if (df.number == 1 && df.wire == 0) dim = static_cast<int64_t>(df.varint);
    v.dims.push_back(dim);
  }
  return v;
}

const Field& graph_field(const Bytes& bytes, std::vector<Field>& model_fields) {
  model_fields = fields(bytes.data(), bytes.size());
  auto* g = find(model_fields, 7);
  if (!g) throw std::runtime_error("no graph in the model");
  return *g;
}

std::set<std::string> initializer_names(const unsigned char* g, const std::vector<Field>& gfs) {
  std::set<std::string> names;
  for (const auto& f : gfs) {
    if (f.number != 5 || f.wire != 2) continue;
    for (const auto& tf : fields(g + f.pbegin, f.pend - f.pbegin))
      if (tf.number == 8 && tf.wire == 2) names.insert(str(g + f.pbegin, tf));
  }
  return names;
}

// Re-emits a message, replacing field `target` (by index into fs) with `payload`.
Bytes replace_field(const unsigned char* p, size_t n, const std::vector<Field>& fs, size_t target, const Bytes& payload) {
  Bytes out;
  out.reserve(n + 16);
  for (size_t i = 0; i < fs.size(); ++i) {
    const auto& f = fs[i];
    if (i != target) {
      out.insert(out.end(), p + f.begin, p + f.end);
      continue;
    }
    write_varint(out, (static_cast<uint64_t>(f.number) << 3) | 2);
    write_varint(out, payload.size());
    out.insert(out.end(), payload.begin(), payload.end());
  }
  return out;
}

size_t index_of(const std::vector<Field>& fs, const Field* f) { return static_cast<size_t>(f - fs.data()); }

Bytes rewrite_shape(const unsigned char* p, size_t n, int64_t h, int64_t w) {
  auto fs = fields(p, n);
  Bytes out;
  int dim_index = 0;
  for (const auto& f : fs) {
    bool is_dim = f.number == 1 && f.wire == 2;
    int di = is_dim ? dim_index++ : -1;
    if (di == 2 || di == 3) {
      int64_t current = 0;
      for (const auto& df : fields(p + f.pbegin, f.pend - f.pbegin))
        if (df.number == 1 && df.wire == 0) current = static_cast<int64_t>(df.varint);
      if (current <= 0) {
        Bytes dim;
        dim.push_back(0x08);  // dim_value, varint
        write_varint(dim, static_cast<uint64_t>(di == 2 ? h : w));
        out.push_back(0x0a);
        write_varint(out, dim.size());
        out.insert(out.end(), dim.begin(), dim.end());
        continue;
      }
    }
    out.insert(out.end(), p + f.begin, p + f.end);
  }
  return out;
}

}  // namespace

GraphSummary summarize(const Bytes& bytes) {
  std::vector<Field> mfs;
  const Field& gf = graph_field(bytes, mfs);
  const unsigned char* g = bytes.data() + gf.pbegin;
  auto gfs = fields(g, gf.pend - gf.pbegin);
  auto inits = initializer_names(g, gfs);
  GraphSummary s;
  for (const auto& f : gfs) {
    if (f.wire != 2) continue;
    if (f.number == 1 && s.node_names.size() < 8) {
      std::string name;
      for (const auto& nf : fields(g + f.pbegin, f.pend - f.pbegin))
        if (nf.number == 3 && nf.wire == 2) name = str(g + f.pbegin, nf);
      s.node_names.push_back(name);
    } else if (f.number == 11) {
      auto v = parse_value_info(g, f);
      if (!inits.count(v.name)) s.inputs.push_back(v);
    } else if (f.number == 12) {
      s.outputs.push_back(parse_value_info(g, f));
    }
  }
  return s;
}

Bytes fix_input_hw(const Bytes& bytes, int64_t h, int64_t w) {
  std::vector<Field> mfs;
  const Field& gf = graph_field(bytes, mfs);
  const unsigned char* g = bytes.data() + gf.pbegin;
  size_t gn = gf.pend - gf.pbegin;
  auto gfs = fields(g, gn);
  auto inits = initializer_names(g, gfs);
  for (size_t i = 0; i < gfs.size(); ++i) {
    const Field& in = gfs[i];
    if (in.number != 11 || in.wire != 2) continue;
    auto v = parse_value_info(g, in);
    if (inits.count(v.name)) continue;
    if (v.dims.size() != 4) throw std::runtime_error("input '" + v.name + "' is not 4-D");
    // Walk down ValueInfo -> type -> tensor_type -> shape, rewriting on the way back up.
    const unsigned char* vp = g + in.pbegin;
    auto vfs = fields(vp, in.pend - in.pbegin);
    const Field* type = find(vfs, 2);
    if (!type) throw std::runtime_error("input '" + v.name + "' has no type");
    const unsigned char* tp = vp + type->pbegin;
    auto tfs = fields(tp, type->pend - type->pbegin);
    const Field* tensor = find(tfs, 1);
    if (!tensor) throw std::runtime_error("input '" + v.name + "' is not a tensor");
    const unsigned char* ttp = tp + tensor->pbegin;
    auto ttfs = fields(ttp, tensor->pend - tensor->pbegin);
    const Field* shape = find(ttfs, 2);
    if (!shape) throw std::runtime_error("input '" + v.name + "' has no shape");
    Bytes new_shape = rewrite_shape(ttp + shape->pbegin, shape->pend - shape->pbegin, h, w);
    Bytes new_tensor = replace_field(ttp, tensor->pend - tensor->pbegin, ttfs, index_of(ttfs, shape), new_shape);
    Bytes new_type = replace_field(tp, type->pend - type->pbegin, tfs, index_of(tfs, tensor), new_tensor);
    Bytes new_vi = replace_field(vp, in.pend - in.pbegin, vfs, index_of(vfs, type), new_type);
    Bytes new_graph = replace_field(g, gn, gfs, i, new_vi);
    return replace_field(bytes.data(), bytes.size(), mfs, index_of(mfs, &gf), new_graph);
  }
  throw std::runtime_error("no graph input to fix");
}

Bytes read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot open ONNX file");
  Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.empty()) throw ModelError(path + ": empty ONNX file");
  return b;
}

}  // namespace emo::face::onnx
