// insightface.model_zoo.retinaface.RetinaFace.detect (0.7.3): letterbox, anchor decode, NMS, max_num,
// and hallo's largest-face pick. Post-network arithmetic in float32 as numpy does it.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/imgproc.hpp>

#include "face/face_detail.h"

namespace emo::face::detail {

Letterbox letterbox(const cv::Mat& bgr, int in_w, int in_h) {
  Letterbox lb;
  double im_ratio = static_cast<double>(bgr.rows) / bgr.cols;
  double model_ratio = static_cast<double>(in_h) / in_w;
  if (im_ratio > model_ratio) {
    lb.new_h = in_h;
    lb.new_w = static_cast<int>(lb.new_h / im_ratio);
  } else {
    lb.new_w = in_w;
    lb.new_h = static_cast<int>(lb.new_w * im_ratio);
  }
  lb.det_scale = static_cast<double>(lb.new_h) / bgr.rows;
  cv::Mat resized;
  cv::resize(bgr, resized, cv::Size(lb.new_w, lb.new_h));  // INTER_LINEAR
  lb.image = cv::Mat::zeros(in_h, in_w, CV_8UC3);
  resized.copyTo(lb.image(cv::Rect(0, 0, lb.new_w, lb.new_h)));
  return lb;
}

std::vector<Detection> scrfd_decode(const std::vector<ScrfdLevel>& levels, int in_w, int in_h, int num_anchors,
                                    double det_scale, float det_thresh, float nms_thresh, DecodeStats* stats) {
  std::vector<Detection> cand;
  if (stats) *stats = DecodeStats{};
  for (const auto& lv : levels) {
    const int s = lv.stride;
    const int fw = in_w / s, fh = in_h / s;
    const int rows = fw * fh * num_anchors;
    CV_Assert(lv.score.rows == rows && lv.bbox.rows == rows);
    const bool use_kps = !lv.kps.empty();
    const float fs = static_cast<float>(s);
    int count = 0;
    for (int r = 0; r < rows; ++r) {
      float score = lv.score.at<float>(r, 0);
      if (!(score >= det_thresh)) continue;
      ++count;
      int cell = r / num_anchors;
      float cx = static_cast<float>(cell % fw) * fs;  // anchor centre (x*s, y*s), (y, x, anchor) order
      float cy = static_cast<float>(cell / fw) * fs;
      const float* b = lv.bbox.ptr<float>(r);
      Detection d;
      d.score = score;
      d.box = cv::Vec4f(cx - b[0] * fs, cy - b[1] * fs, cx + b[2] * fs, cy + b[3] * fs);
      if (use_kps) {
        const float* k = lv.kps.ptr<float>(r);
        for (int j = 0; j < 5; ++j) d.kps[j] = cv::Point2f(cx + k[2 * j] * fs, cy + k[2 * j + 1] * fs);
        d.has_kps = true;
      }
      cand.push_back(d);
    }
    if (stats) {
      stats->candidates_per_level.push_back(count);
      stats->candidates += count;
    }
  }
  const float sc = static_cast<float>(det_scale);  // numpy: float32 array / python float -> float32
  for (auto& d : cand) {
    for (int i = 0; i < 4; ++i) d.box[i] = d.box[i] / sc;
    for (auto& k : d.kps) k = cv::Point2f(k.x / sc, k.y / sc);
  }
  std::vector<int> order(cand.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cand[a].score > cand[b].score; });
  std::vector<Detection> sorted;
  sorted.reserve(cand.size());
  for (int i : order) sorted.push_back(cand[i]);
  std::vector<Detection> out;
  for (int k : nms(sorted, nms_thresh)) out.push_back(sorted[k]);
  return out;
}

std::vector<int> nms(const std::vector<Detection>& dets, float thresh) {
  const size_t n = dets.size();
  std::vector<float> areas(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& b = dets[i].box;
    areas[i] = (b[2] - b[0] + 1.f) * (b[3] - b[1] + 1.f);
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return dets[a].score > dets[b].score; });
  std::vector<int> keep;
  while (!order.empty()) {
    int i = order[0];
    keep.push_back(i);
    std::vector<int> rest;
    const auto& bi = dets[i].box;
    for (size_t t = 1; t < order.size(); ++t) {
      int j = order[t];
      const auto& bj = dets[j].box;
      float xx1 = std::max(bi[0], bj[0]), yy1 = std::max(bi[1], bj[1]);
      float xx2 = std::min(bi[2], bj[2]), yy2 = std::min(bi[3], bj[3]);
      float w = std::max(0.f, xx2 - xx1 + 1.f), h = std::max(0.f, yy2 - yy1 + 1.f);
      float inter = w * h;
      float ovr = inter / (areas[i] + areas[j] - inter);
      if (ovr <= thresh) rest.push_back(j);
    }
    order.swap(rest);
  }
  return keep;
}

std::vector<Detection> limit_max_num(const std::vector<Detection>& dets, int max_num, int img_h, int img_w) {
  if (max_num <= 0 || static_cast<int>(dets.size()) <= max_num) return dets;
  const float cy0 = static_cast<float>(img_h / 2), cx0 = static_cast<float>(img_w / 2);
  std::vector<float> values(dets.size());
  for (size_t i = 0; i < dets.size(); ++i) {
    const auto& b = dets[i].box;
    float area = (b[2] - b[0]) * (b[3] - b[1]);
    float ox = (b[0] + b[2]) / 2.f - cx0, oy = (b[1] + b[3]) / 2.f - cy0;
    values[i] = area - (ox * ox + oy * oy) * 2.f;
  }
  std::vector<int> idx(dets.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return values[a] > values[b]; });
  std::vector<Detection> out;
  for (int k = 0; k < max_num; ++k) out.push_back(dets[idx[k]]);
  return out;
}

int hallo_pick(const std::vector<Detection>& dets) {
  int best = -1;
  float best_area = 0.f;
  for (size_t i = 0; i < dets.size(); ++i) {
    const auto& b = dets[i].box;
    float area = (b[2] - b[0]) * (b[3] - b[1]);
    if (best < 0 || area > best_area) {  // strict: the first of equal areas wins (stable sort, reverse)
      best = static_cast<int>(i);
      best_area = area;
    }
  }
  return best;
}

}  // namespace emo::face::detail
