// hallo.datasets.image_processor.ImageProcessor.preprocess (inference) on insightface FaceAnalysis through
// cv::dnn, with emo's fallbacks: Haar cascade without ONNX models, whole image without a face, and an
// optional square crop (remembered for paste-back) for non-square portraits.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "emo/error.h"
#include "emo/face.h"
#include "emo/image.h"
#include "emo/log.h"
#include "face/face_models.h"

namespace emo::face {

using detail::DetectorNet;

struct FaceAnalyzer::Impl {
  FaceOptions opts;
  std::vector<FaceModelInfo> models;
  mutable std::optional<DetectorNet> det;
  mutable cv::dnn::Net rec_net, lmk_net;
  std::optional<FaceModelInfo> rec, lmk;
  int lmk_num = 106;
  mutable cv::CascadeClassifier haar;
  bool haar_ok = false;
  mutable std::vector<cv::CascadeClassifier> eye_cascades;
};

namespace {

// Haar candidate verification (docs/face.md "Haar fallback"). The thresholds were chosen on the photo set of
// tests/unit/test_face_haar_pick.cpp (opencv-doc's pictures), for haarcascade_frontalface_alt2.
constexpr double kLevelWeightBase = 55.0;  // detectMultiScale3 level weights of alt2 candidates: ~54.7 .. 58.6
constexpr double kEyeBonus = 0.75;         // per side (left / right) on which an eye is found
constexpr double kAcceptScore = 1.25;      // (weight - base) + bonus * sides >= this: a face

// Sides (0, 1 or 2) of the box's upper part on which an eye cascade finds an eye at a plausible place. The box's
// upper 60 % is resampled to 160 x 96 so that small faces (40 px) still show the cascades 20 px eyes.
int eye_sides(std::vector<cv::CascadeClassifier>& cascades, const cv::Mat& gray, const cv::Rect& box) {
  cv::Rect up = cv::Rect(box.x, box.y, box.width, box.height * 6 / 10) & cv::Rect(0, 0, gray.cols, gray.rows);
  if (up.width < 8 || up.height < 8 || cascades.empty()) return 0;
  cv::Mat roi;
  cv::resize(gray(up), roi, cv::Size(160, 96), 0, 0, cv::INTER_LINEAR);
  cv::equalizeHist(roi, roi);
  bool left = false, right = false;
  for (auto& c : cascades) {
    std::vector<cv::Rect> eyes;
    c.detectMultiScale(roi, eyes, 1.1, 3, 0, cv::Size(16, 16), cv::Size(72, 72));
    for (const auto& e : eyes) {
      const int cx = e.x + e.width / 2, cy = e.y + e.height / 2;
      if (cy < 30 || cy > 85) continue;  // eyes sit at 30 - 50 % of a Haar face box's height
      if (cx >= 16 && cx <= 72) left = true;
      else if (cx >= 88 && cx <= 144) right = true;
    }
  }
  return static_cast<int>(left) + static_cast<int>(right);
}

// The face to use: Hallo's largest box, among the verified candidates when the Haar fallback checked them.
int pick_face(const std::vector<Detection>& faces) {
  bool checked = false;
  for (const auto& f : faces) checked = checked || f.eyes >= 0;
  if (!checked) return detail::hallo_pick(faces);
  int best = -1;
  for (size_t i = 0; i < faces.size(); ++i)
    if (faces[i].verified && (best < 0 || faces[i].area() > faces[best].area())) best = static_cast<int>(i);
  return best;
}

}  // namespace

FaceAnalyzer::FaceAnalyzer(FaceOptions opts) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(opts);
  auto& I = *impl_;
  if (!I.opts.model_dir.empty()) {
    if (!std::filesystem::exists(I.opts.model_dir)) throw ModelError(I.opts.model_dir + ": face model folder does not exist");
    I.models = discover_face_models(I.opts.model_dir);
    if (I.models.empty()) log_warn("face analysis: no ONNX models under " + I.opts.model_dir + " (face_analysis/models/*.onnx)");
  }
  for (auto& m : I.models) {
    if (m.task == "detection") {
      I.det = detail::load_detector(m, 640, 640);
      m = I.det->info;  // with the input size actually used
    } else if (m.task == "recognition") {
      I.rec = m;
      I.rec_net = detail::load_plain(m);
    } else if (m.task == "landmark_2d_106") {
      I.lmk = m;
      I.lmk_net = detail::load_plain(m);
    }
  }
  if (!I.det && !I.opts.haar_cascade.empty() && std::filesystem::exists(I.opts.haar_cascade)) {
    I.haar_ok = I.haar.load(I.opts.haar_cascade);
    if (!I.haar_ok) log_warn("face analysis: cannot load Haar cascade " + I.opts.haar_cascade);
    for (const auto& path : I.opts.haar_eye_cascades) {
      cv::CascadeClassifier c;
      if (std::filesystem::exists(path) && c.load(path)) I.eye_cascades.push_back(std::move(c));
    }
    if (I.haar_ok && I.eye_cascades.empty())
      log_warn("face analysis: no eye cascade (opencv-data): Haar face candidates cannot be verified");
  }
}

FaceAnalyzer::~FaceAnalyzer() = default;

const std::vector<FaceModelInfo>& FaceAnalyzer::models() const { return impl_->models; }
bool FaceAnalyzer::has_detector() const { return impl_->det.has_value() || impl_->haar_ok; }

std::vector<Detection> FaceAnalyzer::detect(const cv::Mat& bgr) const {
  auto& I = *impl_;
  if (I.det) return detail::detect_scrfd(*I.det, bgr, I.opts.det_thresh, I.opts.nms_thresh);
  std::vector<Detection> out;
  if (!I.haar_ok) return out;
  cv::Mat raw_gray, gray;
  cv::cvtColor(bgr, raw_gray, cv::COLOR_BGR2GRAY);
  cv::equalizeHist(raw_gray, gray);
  std::vector<cv::Rect> rects;
  std::vector<int> levels;
  std::vector<double> weights;
  int min_side = std::max(24, std::min(bgr.cols, bgr.rows) / 10);
  I.haar.detectMultiScale(gray, rects, levels, weights, 1.1, 5, 0, cv::Size(min_side, min_side), cv::Size(), true);
  std::vector<int> order(rects.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return weights[a] > weights[b]; });
  for (int i : order) {
    const auto& r = rects[i];
    Detection d;
    d.box = cv::Vec4f(static_cast<float>(r.x), static_cast<float>(r.y), static_cast<float>(r.x + r.width),
                      static_cast<float>(r.y + r.height));
    d.score = static_cast<float>(weights[i]);  // Haar level weight, not a probability
    if (!I.eye_cascades.empty()) {
      // Verification: the candidate's level weight plus eyes found inside it. Picking the largest box alone chose
      // false positives (a football shirt next to a small face; see docs/face.md).
      d.eyes = eye_sides(I.eye_cascades, raw_gray, r);
      d.verified = (weights[i] - kLevelWeightBase) + kEyeBonus * d.eyes >= kAcceptScore;
    }
    out.push_back(d);
  }
  return out;
}

std::vector<float> FaceAnalyzer::embed(const cv::Mat& bgr, const std::array<cv::Point2f, 5>& kps) const {
  if (!impl_->rec) throw ModelError("face analysis: no recognition model (glintr100.onnx) found");
  return detail::arcface_embed(impl_->rec_net, *impl_->rec, bgr, kps);
}

std::vector<cv::Point2f> FaceAnalyzer::landmarks106(const cv::Mat& bgr, const cv::Vec4f& box) const {
  if (!impl_->lmk) throw ModelError("face analysis: no landmark_2d_106 model (2d106det.onnx) found");
  return detail::landmark_run(impl_->lmk_net, *impl_->lmk, bgr, box, impl_->lmk_num);
}

CropInfo square_crop_around(int width, int height, const cv::Vec4f& face, double expand_ratio) {
  CropInfo c;
  c.orig_w = width;
  c.orig_h = height;
  int limit = std::min(width, height);
  float fw = face[2] - face[0], fh = face[3] - face[1];
  int side = static_cast<int>(std::lround(std::max(fw, fh) * expand_ratio));
  side = std::clamp(side, 1, limit);
  double cx = (face[0] + face[2]) / 2.0, cy = (face[1] + face[3]) / 2.0;
  int x = static_cast<int>(std::lround(cx - side / 2.0)), y = static_cast<int>(std::lround(cy - side / 2.0));
  x = std::clamp(x, 0, width - side);
  y = std::clamp(y, 0, height - side);
  c.rect = cv::Rect(x, y, side, side);
  return c;
}

cv::Mat paste_back(const cv::Mat& original, const cv::Mat& frame, const CropInfo& crop) {
  if (original.type() != frame.type()) throw InputError("paste_back: frame and original image types differ");
  if (crop.rect.width <= 0 || crop.rect.height <= 0 || (crop.rect & cv::Rect(0, 0, original.cols, original.rows)) != crop.rect)
    throw InputError("paste_back: crop rectangle outside the original image");
  cv::Mat out = original.clone(), resized;
  bool shrink = frame.cols > crop.rect.width || frame.rows > crop.rect.height;
  cv::resize(frame, resized, crop.rect.size(), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
  resized.copyTo(out(crop.rect));
  return out;
}

namespace {
// Keypoints guessed from a face box (Haar): typical positions of SCRFD's five points in a detection box.
std::array<cv::Point2f, 5> kps_from_box(const cv::Vec4f& b) {
  float w = b[2] - b[0], h = b[3] - b[1];
  auto P = [&](float fx, float fy) { return cv::Point2f(b[0] + fx * w, b[1] + fy * h); };
  return {P(0.31f, 0.40f), P(0.69f, 0.40f), P(0.50f, 0.58f), P(0.35f, 0.76f), P(0.65f, 0.76f)};
}

// Face oval and outer lips estimated from a face box (Haar's box spans roughly brows to chin).
HalloMasks masks_from_box(const cv::Vec4f& b, int height, int width, double ratio) {
  double w = b[2] - b[0], h = b[3] - b[1];
  std::vector<cv::Point2d> sil = {{b[0] + 0.04 * w, b[1] - 0.12 * h}, {b[2] - 0.04 * w, b[3] + 0.06 * h}};
  std::vector<cv::Point2d> lips = {{b[0] + 0.34 * w, b[1] + 0.72 * h}, {b[0] + 0.66 * w, b[1] + 0.84 * h}};
  return hallo_masks_from_points(sil, lips, height, width, ratio, 2.0);
}

// Face oval and lips estimated from SCRFD's five keypoints (no landmark model): proportions of a frontal face.
HalloMasks masks_from_kps(const std::array<cv::Point2f, 5>& k, int height, int width, double ratio) {
  cv::Point2d le(k[0].x, k[0].y), re(k[1].x, k[1].y), ml(k[3].x, k[3].y), mr(k[4].x, k[4].y);
  cv::Point2d eye = (le + re) * 0.5, mouth = (ml + mr) * 0.5;
  cv::Point2d down = mouth - eye;                   // eye line -> mouth
  cv::Point2d across = re - le;
  double iod = std::hypot(across.x, across.y);
  cv::Point2d ux = iod > 0 ? across * (1.0 / iod) : cv::Point2d(1, 0);
  std::vector<cv::Point2d> sil = {eye - down * 1.45, mouth + down * 0.95, eye - ux * (iod * 0.95), eye + ux * (iod * 0.95),
                                  mouth - ux * (iod * 0.8), mouth + ux * (iod * 0.8)};
  std::vector<cv::Point2d> lips = {ml, mr, mouth - down * 0.18, mouth + down * 0.22};
  return hallo_masks_from_points(sil, lips, height, width, ratio, 2.0);
}

HalloMasks whole_image_masks(int height, int width) {
  HalloMasks m;
  m.face_mask = cv::Mat(height, width, CV_8U, cv::Scalar(255));
  m.face_box = cv::Vec4i(0, width, 0, height);
  m.lip_mask = cv::Mat::zeros(height, width, CV_8U);
  detail::Region lip{std::nearbyint(width * 0.40), std::nearbyint(width * 0.60), std::nearbyint(height * 0.68),
                     std::nearbyint(height * 0.76)};
  m.lip_box = detail::fill_box(m.lip_mask, detail::expand_region(lip, width, height, 2.0));
  detail::finish_masks(m);
  // Hallo's min-max normalisation turns a constant (all-face) mask into zeros; "the whole image is the face"
  // means face weight 1 everywhere and no background instead.
  m.face_mask_blur.setTo(255);
  m.sep_background = detail::background_mask(m.face_mask_blur);
  cv::subtract(m.face_mask_blur, m.sep_lip, m.sep_face);
  return m;
}
}  // namespace

PortraitAnalysis FaceAnalyzer::analyze_rgb(const cv::Mat& rgb_in, const std::vector<cv::Point2d>* mediapipe) const {
  auto& I = *impl_;
  const auto& o = I.opts;
  if (rgb_in.empty() || rgb_in.type() != CV_8UC3) throw InputError("face analysis: expected an 8-bit RGB image");
  PortraitAnalysis a;
  for (const auto& m : I.models) a.models_used.push_back(m.task + ": " + m.path);
  cv::Mat rgb = rgb_in;
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  a.crop.orig_w = rgb.cols;
  a.crop.orig_h = rgb.rows;
  a.crop.rect = cv::Rect(0, 0, rgb.cols, rgb.rows);
  std::vector<cv::Point2d> mp;
  if (mediapipe) mp = *mediapipe;
  if (o.square_crop && rgb.cols != rgb.rows) {
    auto faces = detect(bgr);
    int p = pick_face(faces);
    cv::Vec4f box = p >= 0 ? faces[p].box : cv::Vec4f(0, 0, static_cast<float>(rgb.cols), static_cast<float>(rgb.rows));
    a.crop = square_crop_around(rgb.cols, rgb.rows, box, p >= 0 ? o.crop_expand_ratio : 1.0);
    rgb = rgb(a.crop.rect).clone();
    bgr = bgr(a.crop.rect).clone();
    for (auto& q : mp) q -= cv::Point2d(a.crop.rect.x, a.crop.rect.y);
    log_info("face analysis: square crop " + std::to_string(a.crop.rect.width) + "x" + std::to_string(a.crop.rect.height) +
             " at (" + std::to_string(a.crop.rect.x) + ", " + std::to_string(a.crop.rect.y) + ")");
  }
  a.width = rgb.cols;
  a.height = rgb.rows;
  a.detector = I.det ? "scrfd" : I.haar_ok ? "haar" : "none";
  a.faces = detect(bgr);
  a.picked = pick_face(a.faces);
  a.embedding.assign(512, 0.f);
  if (a.picked < 0) {
    const std::string rejected =
        a.faces.empty() ? "" : "; " + std::to_string(a.faces.size()) + " candidate(s) failed verification";
    if (o.require_face)
      throw InputError("face analysis: no face found in the image (detector: " + a.detector + rejected + ")");
    a.warnings.push_back("no face found (detector: " + a.detector + rejected +
                         "): the whole image is used as the face region");
  } else {
    const Detection& f = a.faces[a.picked];
    if (I.rec) {
      a.embedding = embed(bgr, f.has_kps ? f.kps : kps_from_box(f.box));
      a.has_embedding = true;
      if (!f.has_kps) a.warnings.push_back("identity embedding from keypoints estimated on a Haar box (approximate)");
    } else {
      a.warnings.push_back("no recognition model: identity embedding is zeros");
    }
    if (I.lmk) a.landmarks106 = landmarks106(bgr, f.box);
  }
  const double r = o.face_expand_ratio;
  if (!mp.empty()) {
    a.masks = hallo_masks_from_mediapipe(mp, a.height, a.width, r);
    a.mask_source = "mediapipe";
  } else if (a.landmarks106.size() == 106) {
    a.masks = hallo_masks_from_106(a.landmarks106, a.height, a.width, r);
    a.mask_source = "landmark_2d_106";
  } else if (a.picked >= 0 && a.faces[a.picked].has_kps) {
    a.masks = masks_from_kps(a.faces[a.picked].kps, a.height, a.width, r);
    a.mask_source = "detection_estimate";
    a.warnings.push_back("masks estimated from the 5 detector keypoints (no 2d106det model)");
  } else if (a.picked >= 0) {
    a.masks = masks_from_box(a.faces[a.picked].box, a.height, a.width, r);
    a.mask_source = "haar_estimate";
    a.warnings.push_back("face / lip masks estimated from the Haar face box");
  } else {
    a.masks = whole_image_masks(a.height, a.width);
    a.mask_source = "whole_image";
  }
  const int S = o.img_size;
  a.ref_image = pil_resize_bilinear(rgb, S, S);
  a.face_region = pil_resize_bilinear(a.masks.face_mask, S, S);
  for (int i = 0; i < 4; ++i) {
    int s = S / (8 << i);
    a.full_mask[i] = pil_resize_bilinear(a.masks.sep_background, s, s);
    a.face_mask[i] = pil_resize_bilinear(a.masks.sep_face, s, s);
    a.lip_mask[i] = pil_resize_bilinear(a.masks.sep_lip, s, s);
  }
  return a;  // callers report a.warnings (with the file name)
}

PortraitAnalysis FaceAnalyzer::analyze_file(const std::string& path, cv::Mat* rgb_out) const {
  // emo::image: strict decoding (a truncated or corrupt file is an InputError) and the EXIF orientation applied
  // once, so analysis, crop and paste-back all see these upright pixels (Hallo's PIL ignores EXIF: docs/face.md).
  cv::Mat rgb = image::load_rgb(path);
  if (rgb_out) *rgb_out = rgb;
  std::vector<cv::Point2d> mp;
  if (!impl_->opts.mediapipe_landmarks.empty())
    mp = read_mediapipe_landmarks(impl_->opts.mediapipe_landmarks, rgb.cols, rgb.rows);
  return analyze_rgb(rgb, mp.empty() ? nullptr : &mp);
}

}  // namespace emo::face
