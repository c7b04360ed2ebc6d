// Portrait analysis as Hallo prepares the reference image: insightface's FaceAnalysis (SCRFD detection,
// ArcFace embedding, 2d106det landmarks) through OpenCV's cv::dnn, Hallo's get_mask face / lip masks,
// and the fallbacks (Haar cascade, whole image) when models or faces are missing.
// Reference facts: ../shared/reference/face-analysis.md.
#pragma once
#include <opencv2/core.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace emo::face {

// One detected face, in the coordinates of the image given to detect() (insightface's Face).
struct Detection {
  cv::Vec4f box;                    // x1, y1, x2, y2 (float32 as insightface)
  float score = 0.f;
  std::array<cv::Point2f, 5> kps{};  // eyes, nose, mouth corners (SCRFD); zeros when !has_kps
  bool has_kps = false;
  // Haar fallback only (docs/face.md "Haar fallback"): eyes found inside the box (0 none, 1 one side, 2 both
  // sides; -1 = not checked, SCRFD) and whether the candidate passed verification (level weight + eyes).
  int eyes = -1;
  bool verified = true;
  float area() const { return (box[2] - box[0]) * (box[3] - box[1]); }
};

// One ONNX file recognised by insightface's model_zoo routing rules.
struct FaceModelInfo {
  std::string path;
  std::string task;       // "detection", "recognition", "landmark_2d_106", "landmark_3d_68", "genderage"
  int input_w = 0, input_h = 0;
  float input_mean = 0.f, input_std = 1.f;
};

// insightface FaceAnalysis(name="", root=R): R/models/*.onnx, sorted, one model per task (first wins).
// `dir` may be a Hallo pretrained_models/ folder, its face_analysis/ folder, or the models/ folder itself.
// Returns an empty list when no folder / no ONNX file exists; throws ModelError for unreadable files.
std::vector<FaceModelInfo> discover_face_models(const std::string& dir);

// Hallo's get_mask products (util.get_mask), all uint8.
struct HalloMasks {
  cv::Vec4i face_box{0, 0, 0, 0};  // filled rectangle x0, x1, y0, y1 (end-exclusive, after numpy slicing)
  cv::Vec4i lip_box{0, 0, 0, 0};
  cv::Mat face_mask, lip_mask;     // H x W, hard rectangles (0 / 255)
  cv::Mat face_mask_blur;          // 64 x 64
  cv::Mat sep_lip, sep_background, sep_face;  // 64 x 64
};

// Hallo's masks from any landmark set: silhouette points (face oval) and outer-lip points, in pixels.
HalloMasks hallo_masks_from_points(const std::vector<cv::Point2d>& silhouette, const std::vector<cv::Point2d>& lips,
                                   int height, int width, double face_expand_ratio = 1.2, double lip_expand_ratio = 2.0);
// From 478 MediaPipe points (pixels): exactly Hallo's silhouette_ids / lip_ids.
HalloMasks hallo_masks_from_mediapipe(const std::vector<cv::Point2d>& pts478, int height, int width,
                                      double face_expand_ratio = 1.2);
// From insightface 2d106det points: jaw contour, forehead extrapolated from the brows, outer lips.
HalloMasks hallo_masks_from_106(const std::vector<cv::Point2f>& pts106, int height, int width,
                                double face_expand_ratio = 1.2);
// Reads precomputed MediaPipe landmarks: .npy (478x2 / 478x3, float32/64), JSON [[x, y], ...] or text
// (one "x y" / "x,y[,z]" per line). Values all within [0, 1] are taken as normalised and scaled by w, h.
std::vector<cv::Point2d> read_mediapipe_landmarks(const std::string& path, int width, int height);

// PIL's Image.resize(..., BILINEAR) for uint8 images (antialiasing when shrinking), 1 or 3 channels.
cv::Mat pil_resize_bilinear(const cv::Mat& src, int out_w, int out_h);

// The square crop emo takes from non-square portraits (kept for paste-back).
struct CropInfo {
  cv::Rect rect;            // in the original image
  int orig_w = 0, orig_h = 0;
  bool cropped() const { return rect.x != 0 || rect.y != 0 || rect.width != orig_w || rect.height != orig_h; }
};
// Largest square around `face` (x1, y1, x2, y2) of side max(w, h) * expand (limited by the image), centred on
// the face and shifted inside the image.
CropInfo square_crop_around(int width, int height, const cv::Vec4f& face, double expand_ratio);
// Paste-back: `frame` (any size, e.g. a generated 512x512 frame of the crop) resized (INTER_AREA when
// shrinking, else INTER_CUBIC) into crop.rect of a copy of `original` (same type as frame).
cv::Mat paste_back(const cv::Mat& original, const cv::Mat& frame, const CropInfo& crop);

struct FaceOptions {
  std::string model_dir;           // pretrained_models/ or face_analysis/ or .../models; "" = no ONNX models
  std::string haar_cascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml";  // fewer false positives than _default on real photos
  // Eye cascades that verify Haar face candidates (both are used; empty or missing = no eye check).
  std::vector<std::string> haar_eye_cascades = {"/usr/share/opencv4/haarcascades/haarcascade_eye.xml",
                                                "/usr/share/opencv4/haarcascades/haarcascade_eye_tree_eyeglasses.xml"};
  std::string mediapipe_landmarks; // optional 478-point file (pixels of the analysed image)
  double face_expand_ratio = 1.2;  // Hallo's config face_expand_ratio
  float det_thresh = 0.5f, nms_thresh = 0.4f;
  int img_size = 512;              // Hallo's reference image size (square)
  bool require_face = false;       // no face -> InputError instead of the whole-image fallback
  bool square_crop = false;        // crop non-square images to a square around the face first
  double crop_expand_ratio = 2.0;  // side of that square = face size * ratio
};

// Everything Hallo's ImageProcessor.preprocess produces, plus what emo found on the way.
struct PortraitAnalysis {
  int width = 0, height = 0;         // of the analysed image (after the optional crop)
  CropInfo crop;
  std::vector<Detection> faces;      // every detection, detector order (score descending)
  int picked = -1;                   // Hallo's pick (largest area, first among equals; with the Haar fallback, among
                                     // the verified candidates only); -1 = none
  std::string detector;              // "scrfd", "haar", "none"
  // "mediapipe" (Hallo exact), "landmark_2d_106" (forehead extrapolated), "detection_estimate" (5 keypoints),
  // "haar_estimate" (face box), "whole_image" (no face: face box = image, face weight 255 everywhere, lips guessed)
  std::string mask_source;
  std::vector<std::string> models_used;
  std::vector<std::string> warnings;  // not logged here: callers report them (with the file name)
  std::vector<float> embedding;      // 512 raw ArcFace values; zeros when no face / no recognition model
  bool has_embedding = false;
  std::vector<cv::Point2f> landmarks106;
  HalloMasks masks;
  cv::Mat ref_image;                 // img_size x img_size RGB uint8 (PIL bilinear resize)
  cv::Mat face_region;               // img_size x img_size uint8: the hard face box resized (FaceLocator input / 255)
  std::array<cv::Mat, 4> full_mask, face_mask, lip_mask;  // uint8, img_size / 8, 16, 32, 64 square (value / 255 in hallo)
};

class FaceAnalyzer {
 public:
  explicit FaceAnalyzer(FaceOptions opts);
  ~FaceAnalyzer();
  FaceAnalyzer(const FaceAnalyzer&) = delete;
  FaceAnalyzer& operator=(const FaceAnalyzer&) = delete;

  const std::vector<FaceModelInfo>& models() const;
  bool has_detector() const;
  // Raw detection on a BGR image (SCRFD, else Haar, else empty).
  std::vector<Detection> detect(const cv::Mat& bgr) const;
  // ArcFace raw 512-d embedding of the face with keypoints `kps` (throws ModelError without a model).
  std::vector<float> embed(const cv::Mat& bgr, const std::array<cv::Point2f, 5>& kps) const;
  // 2d106det landmarks for a box (throws ModelError without a model).
  std::vector<cv::Point2f> landmarks106(const cv::Mat& bgr, const cv::Vec4f& box) const;
  // The whole of Hallo's preprocess on an RGB image (uint8, HxWx3). `mediapipe`: optional 478 points in
  // pixels of `rgb` (Hallo's exact masks); otherwise 2d106det, else estimates (see mask_source).
  PortraitAnalysis analyze_rgb(const cv::Mat& rgb, const std::vector<cv::Point2d>* mediapipe = nullptr) const;
  // Reads the file with emo::image::load_rgb (strict, EXIF orientation applied; throws InputError) and analyses
  // it. `rgb_out`: the decoded upright pixels, the ones the analysis (and its crop) refer to.
  PortraitAnalysis analyze_file(const std::string& image_path, cv::Mat* rgb_out = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Picture for people debugging a bad result: boxes, keypoints, landmarks and the three masks overlaid (BGR).
cv::Mat draw_debug_overlay(const cv::Mat& rgb, const PortraitAnalysis& a);

}  // namespace emo::face
