// The `emo face -o debug.png` picture: every box, the picked face, keypoints, landmarks, the face / lip boxes
// tinted over the image, and the three 64x64 attention masks (face, lip, background) in a strip below.
#include <algorithm>
#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "emo/face.h"

namespace emo::face {

namespace {
void tint(cv::Mat& img, const cv::Mat& mask, const cv::Scalar& color, double alpha) {
  if (mask.empty() || mask.size() != img.size()) return;
  cv::Mat colored(img.size(), img.type(), color), blended;
  cv::addWeighted(img, 1.0 - alpha, colored, alpha, 0.0, blended);
  blended.copyTo(img, mask);
}

void label(cv::Mat& img, const std::string& text, cv::Point at, double scale, const cv::Scalar& color) {
  cv::putText(img, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 3, cv::LINE_AA);
  cv::putText(img, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, color, 1, cv::LINE_AA);
}
}  // namespace

cv::Mat draw_debug_overlay(const cv::Mat& rgb_full, const PortraitAnalysis& a) {
  cv::Mat bgr;
  cv::cvtColor(rgb_full, bgr, cv::COLOR_RGB2BGR);
  cv::Mat img = bgr(a.crop.rect.area() > 0 ? a.crop.rect : cv::Rect(0, 0, bgr.cols, bgr.rows)).clone();
  const double fs = std::max(0.4, std::min(img.cols, img.rows) / 700.0);
  const int th = std::max(1, static_cast<int>(std::min(img.cols, img.rows) / 300));
  tint(img, a.masks.face_mask, cv::Scalar(255, 120, 0), 0.25);  // blue: hard face box (FaceLocator input)
  tint(img, a.masks.lip_mask, cv::Scalar(0, 0, 255), 0.35);     // red: lip box
  for (size_t i = 0; i < a.faces.size(); ++i) {
    const auto& f = a.faces[i];
    bool picked = static_cast<int>(i) == a.picked;
    cv::Scalar c = picked ? cv::Scalar(0, 255, 0) : cv::Scalar(160, 160, 160);
    cv::rectangle(img, cv::Point(cvRound(f.box[0]), cvRound(f.box[1])), cv::Point(cvRound(f.box[2]), cvRound(f.box[3])), c,
                  picked ? 2 * th : th, cv::LINE_AA);
    char buf[64];
    std::snprintf(buf, sizeof buf, "#%zu %.2f%s", i, f.score, picked ? " picked" : "");
    label(img, buf, cv::Point(cvRound(f.box[0]), std::max(12, cvRound(f.box[1]) - 4)), fs, c);
    if (f.has_kps)
      for (const auto& k : f.kps) cv::circle(img, k, 2 * th + 1, cv::Scalar(0, 0, 255), cv::FILLED, cv::LINE_AA);
  }
  for (const auto& p : a.landmarks106) cv::circle(img, p, th, cv::Scalar(0, 255, 255), cv::FILLED, cv::LINE_AA);
  label(img, "masks: " + a.mask_source + ", detector: " + a.detector, cv::Point(6, img.rows - 8), fs, cv::Scalar(255, 255, 255));

  // Strip with the 64x64 masks (nearest-neighbour upscaled so their blur is visible as is).
  const int side = std::max(64, std::min(256, img.cols / 3));
  cv::Mat strip(side + 24, img.cols, CV_8UC3, cv::Scalar(32, 32, 32));
  const std::pair<const char*, const cv::Mat*> views[3] = {
      {"face (sep_face)", &a.masks.sep_face}, {"lip (sep_lip)", &a.masks.sep_lip}, {"background (full_mask)", &a.masks.sep_background}};
  for (int i = 0; i < 3; ++i) {
    int x = i * (img.cols / 3);
    if (views[i].second->empty() || x + side > img.cols) continue;
    cv::Mat up, col;
    cv::resize(*views[i].second, up, cv::Size(side, side), 0, 0, cv::INTER_NEAREST);
    cv::cvtColor(up, col, cv::COLOR_GRAY2BGR);
    col.copyTo(strip(cv::Rect(x, 20, side, side)));
    label(strip, views[i].first, cv::Point(x + 2, 15), 0.45, cv::Scalar(255, 255, 255));
  }
  cv::Mat out;
  cv::vconcat(img, strip, out);
  return out;
}

}  // namespace emo::face
