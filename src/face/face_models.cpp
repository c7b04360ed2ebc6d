// insightface 0.7.3 model_zoo (ModelRouter, RetinaFace, ArcFaceONNX, Landmark) and
// app.FaceAnalysis's model discovery, on OpenCV's cv::dnn.
#include "face/face_models.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "emo/error.h"
#include "emo/log.h"
#include "face/onnx_graph.h"

namespace fs = std::filesystem;

namespace emo::face {

namespace detail {

namespace {
bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// ArcFaceONNX / Landmark / Attribute guess the input normalisation from the first 8 node names.
bool mxnet_style(const std::vector<std::string>& names, bool allow_bn_data) {
  bool sub = false, mul = false;
  for (size_t i = 0; i < names.size() && i < 8; ++i) {
    const auto& n = names[i];
    if (starts_with(n, "Sub") || starts_with(n, "_minus")) sub = true;
    if (starts_with(n, "Mul") || starts_with(n, "_mul")) mul = true;
    if (allow_bn_data && i < 3 && n == "bn_data") sub = mul = true;
  }
  return sub && mul;
}

cv::Mat as_2d(const cv::Mat& m) {
  // [N, C] or [1, N, C] -> N x C
  int cols = m.dims >= 2 ? m.size[m.dims - 1] : 1;
  int rows = static_cast<int>(m.total() / std::max(cols, 1));
  return cv::Mat(rows, cols, CV_32F, const_cast<void*>(static_cast<const void*>(m.ptr<float>())));
}
}  // namespace

FaceModelInfo route_model(const std::string& path) {
  FaceModelInfo info;
  info.path = path;
  onnx::GraphSummary g;
  try {
    g = onnx::summarize(onnx::read_file_bytes(path));
  } catch (const emo::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw ModelError(path + ": not a readable ONNX model (" + e.what() + ")");
  }
  if (g.inputs.empty()) return info;
  const auto& shape = g.inputs[0].dims;
  int64_t h = shape.size() >= 4 ? shape[2] : -1, w = shape.size() >= 4 ? shape[3] : -1;
  info.input_h = static_cast<int>(std::max<int64_t>(h, 0));
  info.input_w = static_cast<int>(std::max<int64_t>(w, 0));
  if (g.outputs.size() >= 5) {
    info.task = "detection";
    info.input_mean = 127.5f;
    info.input_std = 128.f;
  } else if (h == 192 && w == 192) {
    int64_t out1 = !g.outputs.empty() && g.outputs[0].dims.size() >= 2 ? g.outputs[0].dims[1] : -1;
    if (out1 == 3309) info.task = "landmark_3d_68";
    else info.task = "landmark_2d_" + std::to_string(out1 > 0 ? out1 / 2 : 0);
    bool mx = mxnet_style(g.node_names, true);
    info.input_mean = mx ? 0.f : 127.5f;
    info.input_std = mx ? 1.f : 128.f;
  } else if (h == 96 && w == 96) {
    info.task = "genderage";
    bool mx = mxnet_style(g.node_names, true);
    info.input_mean = mx ? 0.f : 127.5f;
    info.input_std = mx ? 1.f : 128.f;
  } else if (g.inputs.size() == 2 && h == 128 && w == 128) {
    info.task = "inswapper";
  } else if (h == w && h >= 112 && h % 16 == 0) {
    info.task = "recognition";
    bool mx = mxnet_style(g.node_names, false);
    info.input_mean = mx ? 0.f : 127.5f;
    info.input_std = mx ? 1.f : 127.5f;
  }
  return info;
}

DetectorNet load_detector(const FaceModelInfo& info, int det_w, int det_h) {
  DetectorNet d;
  d.info = info;
  auto bytes = onnx::read_file_bytes(info.path);
  onnx::GraphSummary g;
  try {
    g = onnx::summarize(bytes);
    d.in_w = info.input_w > 0 ? info.input_w : det_w;
    d.in_h = info.input_h > 0 ? info.input_h : det_h;
    if (info.input_w <= 0 || info.input_h <= 0) bytes = onnx::fix_input_hw(bytes, d.in_h, d.in_w);
  } catch (const std::exception& e) {
    throw ModelError(info.path + ": cannot prepare the detector graph (" + e.what() + ")");
  }
  d.num_outputs = static_cast<int>(g.outputs.size());
  switch (d.num_outputs) {
    case 6: case 9: d.strides = {8, 16, 32}; d.num_anchors = 2; break;
    case 10: case 15: d.strides = {8, 16, 32, 64, 128}; d.num_anchors = 1; break;
    default: throw ModelError(info.path + ": detector with " + std::to_string(d.num_outputs) + " outputs (expected 6/9/10/15)");
  }
  d.use_kps = d.num_outputs == 9 || d.num_outputs == 15;
  try {
    d.net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } catch (const cv::Exception& e) {
    throw ModelError(info.path + ": OpenCV cannot load the detector: " + e.what());
  }
  d.info.input_w = d.in_w;
  d.info.input_h = d.in_h;
  return d;
}

std::vector<ScrfdLevel> levels_from_outputs(const std::vector<cv::Mat>& outs, int in_w, int in_h, int num_anchors,
                                            const std::vector<int>& strides) {
  std::vector<ScrfdLevel> levels(strides.size());
  for (size_t i = 0; i < strides.size(); ++i) levels[i].stride = strides[i];
  for (const auto& o : outs) {
    cv::Mat m = as_2d(o);
    int level = -1;
    for (size_t i = 0; i < strides.size(); ++i)
      if (m.rows == (in_w / strides[i]) * (in_h / strides[i]) * num_anchors) level = static_cast<int>(i);
    if (level < 0) throw ModelError("detector output with " + std::to_string(m.rows) + " rows matches no stride");
    auto& lv = levels[level];
    cv::Mat* slot = m.cols == 1 ? &lv.score : m.cols == 4 ? &lv.bbox : m.cols == 10 ? &lv.kps : nullptr;
    if (!slot) throw ModelError("detector output with " + std::to_string(m.cols) + " columns (expected 1, 4 or 10)");
    if (!slot->empty()) throw ModelError("two detector outputs of the same shape");
    *slot = m.clone();
  }
  for (const auto& lv : levels)
    if (lv.score.empty() || lv.bbox.empty()) throw ModelError("detector outputs incomplete for stride " + std::to_string(lv.stride));
  return levels;
}

std::vector<ScrfdLevel> run_detector_blob(DetectorNet& d, const cv::Mat& blob) {
  d.net.setInput(blob);
  std::vector<cv::Mat> outs;
  d.net.forward(outs, d.net.getUnconnectedOutLayersNames());
  auto levels = levels_from_outputs(outs, d.in_w, d.in_h, d.num_anchors, d.strides);
  if (!d.use_kps)
    for (auto& lv : levels) lv.kps.release();
  return levels;
}

std::vector<Detection> detect_scrfd(DetectorNet& d, const cv::Mat& bgr, float det_thresh, float nms_thresh,
                                    DecodeStats* stats) {
  Letterbox lb = letterbox(bgr, d.in_w, d.in_h);
  float m = d.info.input_mean;
  cv::Mat blob = cv::dnn::blobFromImage(lb.image, 1.0 / d.info.input_std, cv::Size(d.in_w, d.in_h), cv::Scalar(m, m, m), true);
  auto levels = run_detector_blob(d, blob);
  return scrfd_decode(levels, d.in_w, d.in_h, d.num_anchors, lb.det_scale, det_thresh, nms_thresh, stats);
}

cv::dnn::Net load_plain(const FaceModelInfo& info) {
  try {
    return cv::dnn::readNetFromONNX(info.path);
  } catch (const cv::Exception& e) {
    throw ModelError(info.path + ": OpenCV cannot load the " + info.task + " model: " + e.what());
  }
}

cv::Mat arcface_blob(const cv::Mat& aligned, const FaceModelInfo& info) {
  float m = info.input_mean;
  return cv::dnn::blobFromImage(aligned, 1.0 / info.input_std, cv::Size(info.input_w, info.input_h), cv::Scalar(m, m, m), true);
}

std::vector<float> arcface_embed(cv::dnn::Net& net, const FaceModelInfo& info, const cv::Mat& bgr,
                                 const std::array<cv::Point2f, 5>& kps) {
  cv::Mat aligned = norm_crop(bgr, kps, info.input_w);
  net.setInput(arcface_blob(aligned, info));
  cv::Mat out = net.forward();
  return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.total());
}

std::vector<cv::Point2f> landmark_run(cv::dnn::Net& net, const FaceModelInfo& info, const cv::Mat& bgr,
                                      const cv::Vec4f& box, int lmk_num) {
  cv::Matx23d M;
  cv::Mat aimg = landmark_crop(bgr, box, info.input_w, &M);
  float m = info.input_mean;
  net.setInput(cv::dnn::blobFromImage(aimg, 1.0 / info.input_std, aimg.size(), cv::Scalar(m, m, m), true));
  cv::Mat out = net.forward();
  return landmark_decode(out.ptr<float>(), static_cast<int>(out.total()), lmk_num, info.input_w, M);
}

}  // namespace detail

std::vector<FaceModelInfo> discover_face_models(const std::string& dir) {
  std::vector<FaceModelInfo> found;
  if (dir.empty()) return found;
  fs::path root(dir);
  fs::path models;
  for (const fs::path& cand : {root / "face_analysis" / "models", root / "models", root}) {
    std::error_code ec;
    if (!fs::is_directory(cand, ec)) continue;
    bool any = false;
    for (const auto& e : fs::directory_iterator(cand, ec))
      if (e.path().extension() == ".onnx") any = true;
    if (any) {
      models = cand;
      break;
    }
  }
  if (models.empty()) return found;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(models))
    if (e.path().extension() == ".onnx") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    FaceModelInfo info = detail::route_model(f);
    if (info.task.empty()) {
      log_warn("face analysis: model not recognized: " + f);
      continue;
    }
    bool dup = std::any_of(found.begin(), found.end(), [&](const FaceModelInfo& o) { return o.task == info.task; });
    if (dup) {
      log_debug("face analysis: duplicated " + info.task + " model ignored: " + f);
      continue;
    }
    found.push_back(info);
  }
  return found;
}

}  // namespace emo::face
