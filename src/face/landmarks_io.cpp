// Precomputed MediaPipe FaceLandmarker points (478 x 2 or x 3) for users who need Hallo's exact masks:
// .npy (float32/float64, C order), JSON ([[x, y], ...] or {"landmarks": [...]}) or plain text.
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "emo/error.h"
#include "emo/face.h"

namespace emo::face {

namespace {
std::vector<double> read_npy(const std::string& path, const std::string& data, std::vector<size_t>& shape) {
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) throw InputError(path + ": not a .npy file");
  unsigned major = static_cast<unsigned char>(data[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = static_cast<unsigned char>(data[8]) | (static_cast<unsigned char>(data[9]) << 8);
    off = 10;
  } else {
    if (data.size() < 12) throw InputError(path + ": truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(data[8 + i])) << (8 * i);
    off = 12;
  }
  if (off + hlen > data.size()) throw InputError(path + ": truncated .npy header");
  std::string h = data.substr(off, hlen);
  bool f8 = h.find("'<f8'") != std::string::npos, f4 = h.find("'<f4'") != std::string::npos;
  if (!f8 && !f4) throw InputError(path + ": .npy dtype must be little-endian float32 or float64");
  if (h.find("'fortran_order': True") != std::string::npos) throw InputError(path + ": Fortran-order .npy not supported");
  auto p0 = h.find("'shape': (");
  if (p0 == std::string::npos) throw InputError(path + ": .npy header without shape");
  std::istringstream ss(h.substr(p0 + 10, h.find(')', p0) - p0 - 10));
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (tok.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoul(tok));
  size_t n = 1;
  for (auto d : shape) n *= d;
  size_t es = f8 ? 8 : 4;
  if (off + hlen + n * es > data.size()) throw InputError(path + ": .npy data truncated");
  std::vector<double> v(n);
  const char* p = data.data() + off + hlen;
  for (size_t i = 0; i < n; ++i) {
    if (f8) std::memcpy(&v[i], p + 8 * i, 8);
    else {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      v[i] = f;
    }
  }
  return v;
}
}  // namespace

std::vector<cv::Point2d> read_mediapipe_landmarks(const std::string& path, int width, int height) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the landmark file");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<cv::Point2d> pts;
  if (data.compare(0, 6, "\x93NUMPY") == 0) {
    std::vector<size_t> shape;
    auto v = read_npy(path, data, shape);
    if (shape.size() != 2 || (shape[1] != 2 && shape[1] != 3)) throw InputError(path + ": expected an N x 2 or N x 3 array");
    for (size_t i = 0; i < shape[0]; ++i) pts.emplace_back(v[i * shape[1]], v[i * shape[1] + 1]);
  } else {
    size_t first = data.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && (data[first] == '[' || data[first] == '{')) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(data);
        if (j.is_object()) j = j.at("landmarks");
        for (const auto& p : j) pts.emplace_back(p.at(0).get<double>(), p.at(1).get<double>());
      } catch (const std::exception& e) {
        throw InputError(path + ": bad landmark JSON (" + e.what() + ")");
      }
    } else {
      std::istringstream ls(data);
      std::string line;
      while (std::getline(ls, line)) {
        for (auto& c : line)
          if (c == ',' || c == ';' || c == '\t') c = ' ';
        std::istringstream fs(line);
        double x, y;
        if (fs >> x >> y) pts.emplace_back(x, y);
      }
    }
  }
  if (pts.size() != 478 && pts.size() != 468)
    throw InputError(path + ": expected 478 (or 468) MediaPipe landmarks, found " + std::to_string(pts.size()));
  bool normalised = true;
  for (const auto& p : pts)
    if (p.x < -0.5 || p.x > 1.5 || p.y < -0.5 || p.y > 1.5) normalised = false;
  if (normalised)
    for (auto& p : pts) p = cv::Point2d(p.x * width, p.y * height);
  return pts;
}

}  // namespace emo::face
