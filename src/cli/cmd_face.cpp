// emo face IMAGE: run the portrait analysis Hallo's preprocessing does and show what was found.
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli/commands.h"
#include "emo/error.h"
#include "emo/face.h"
#include "util/atomic_file.h"

namespace emo::cli {

namespace {
struct FaceCliOptions {
  std::string image;
  std::string model;
  std::string output;
  std::string masks_dir;
  std::string landmarks;
  bool json = false;
  bool require_face = false;
  bool square_crop = false;
  double face_expand_ratio = 1.2;
  double crop_expand_ratio = 2.0;
};

void write_png(const std::string& path, const cv::Mat& img) {
  std::vector<uchar> buf;
  if (!cv::imencode(".png", img, buf)) throw OutputError(path + ": cannot encode PNG");
  util::AtomicFile f(path);
  f.write(buf.data(), buf.size());
  f.commit();
}

nlohmann::json box_json(const cv::Vec4f& b) { return {b[0], b[1], b[2], b[3]}; }

int run_face(const FaceCliOptions& o) {
  namespace fs = std::filesystem;
  if (!fs::exists(o.image)) throw InputError(o.image + ": no such file");
  face::FaceOptions fo;
  fo.model_dir = o.model;
  if (fo.model_dir.empty())
    if (const char* e = std::getenv("EMO_MODEL_DIR"); e && *e) fo.model_dir = e;
  fo.mediapipe_landmarks = o.landmarks;
  fo.require_face = o.require_face;
  fo.square_crop = o.square_crop;
  fo.face_expand_ratio = o.face_expand_ratio;
  fo.crop_expand_ratio = o.crop_expand_ratio;
  face::FaceAnalyzer fa(fo);
  cv::Mat rgb;  // the pixels the analysis saw (emo::image: EXIF orientation applied once)
  auto a = fa.analyze_file(o.image, &rgb);
  for (const auto& w : a.warnings) log_warn(o.image + ": " + w);

  std::vector<std::string> written;
  if (!o.output.empty()) {
    write_png(o.output, face::draw_debug_overlay(rgb, a));
    written.push_back(o.output);
  }
  if (!o.masks_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.masks_dir, ec);
    if (ec) throw OutputError(o.masks_dir + ": cannot create folder (" + ec.message() + ")");
    const std::pair<const char*, const cv::Mat*> files[] = {
        {"face_mask.png", &a.masks.face_mask}, {"lip_mask.png", &a.masks.lip_mask},
        {"face_mask_blur.png", &a.masks.face_mask_blur}, {"sep_lip.png", &a.masks.sep_lip},
        {"sep_background.png", &a.masks.sep_background}, {"sep_face.png", &a.masks.sep_face}};
    for (const auto& [name, m] : files) {
      std::string p = (fs::path(o.masks_dir) / name).string();
      write_png(p, *m);
      written.push_back(p);
    }
  }

  if (o.json) {
    nlohmann::json j;
    j["image"] = o.image;
    j["width"] = a.width;
    j["height"] = a.height;
    j["crop"] = {a.crop.rect.x, a.crop.rect.y, a.crop.rect.width, a.crop.rect.height};
    j["detector"] = a.detector;
    j["models"] = nlohmann::json::array();
    for (const auto& m : fa.models())
      j["models"].push_back({{"task", m.task}, {"path", m.path}, {"input", {m.input_w, m.input_h}},
                             {"mean", m.input_mean}, {"std", m.input_std}});
    j["faces"] = nlohmann::json::array();
    for (const auto& f : a.faces) {
      nlohmann::json fj{{"box", box_json(f.box)}, {"score", f.score}, {"area", f.area()}};
      if (f.eyes >= 0) {
        fj["eyes"] = f.eyes;
        fj["verified"] = f.verified;
      }
      if (f.has_kps) {
        fj["kps"] = nlohmann::json::array();
        for (const auto& k : f.kps) fj["kps"].push_back({k.x, k.y});
      }
      j["faces"].push_back(fj);
    }
    j["picked"] = a.picked;
    j["has_embedding"] = a.has_embedding;
    double n2 = 0;
    for (float v : a.embedding) n2 += static_cast<double>(v) * v;
    j["embedding_norm"] = std::sqrt(n2);
    j["landmarks_106"] = a.landmarks106.size();
    j["mask_source"] = a.mask_source;
    j["face_box"] = {a.masks.face_box[0], a.masks.face_box[1], a.masks.face_box[2], a.masks.face_box[3]};
    j["lip_box"] = {a.masks.lip_box[0], a.masks.lip_box[1], a.masks.lip_box[2], a.masks.lip_box[3]};
    j["warnings"] = a.warnings;
    j["written"] = written;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: %dx%d", o.image.c_str(), a.width, a.height);
  if (a.crop.cropped())
    std::printf(" (square crop %dx%d at %d,%d of %dx%d)", a.crop.rect.width, a.crop.rect.height, a.crop.rect.x, a.crop.rect.y,
                a.crop.orig_w, a.crop.orig_h);
  std::printf("\nmodels:%s\n", fa.models().empty() ? " none" : "");
  for (const auto& m : fa.models())
    std::printf("  %-16s %s (input %dx%d, mean %g, std %g)\n", m.task.c_str(), m.path.c_str(), m.input_w, m.input_h,
                m.input_mean, m.input_std);
  std::printf("detector: %s, %zu face(s)\n", a.detector.c_str(), a.faces.size());
  for (size_t i = 0; i < a.faces.size(); ++i) {
    const auto& f = a.faces[i];
    std::printf("  %s#%zu box [%.1f, %.1f, %.1f, %.1f] score %.3f area %.0f", static_cast<int>(i) == a.picked ? "*" : " ", i,
                f.box[0], f.box[1], f.box[2], f.box[3], f.score, f.area());
    if (f.eyes >= 0) std::printf(" eyes %d/2 %s", f.eyes, f.verified ? "verified" : "rejected");
    std::printf("\n");
  }
  if (a.picked >= 0) std::printf("picked: #%d (largest area, as Hallo%s)\n", a.picked, a.detector == "haar" ? ", among verified boxes" : "");
  else std::printf("picked: none (whole image used as the face region)\n");
  std::printf("embedding: %s\n", a.has_embedding ? "512-d ArcFace (raw)" : "zeros (no face or no recognition model)");
  std::printf("landmarks: %zu (2d106det)\n", a.landmarks106.size());
  std::printf("masks from %s: face box x[%d, %d) y[%d, %d), lip box x[%d, %d) y[%d, %d)\n", a.mask_source.c_str(),
              a.masks.face_box[0], a.masks.face_box[1], a.masks.face_box[2], a.masks.face_box[3], a.masks.lip_box[0],
              a.masks.lip_box[1], a.masks.lip_box[2], a.masks.lip_box[3]);
  for (const auto& w : written) std::printf("wrote %s\n", w.c_str());
  return 0;
}
}  // namespace

Run add_face(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<FaceCliOptions>();
  auto* sub = app.add_subcommand("face", "Analyse a portrait as Hallo does: face boxes, pick, embedding, landmarks, face/lip masks");
  sub->add_option("image", o->image, "Portrait image")->required();
  sub->add_option("--model", o->model, "Hallo pretrained_models/ (or face_analysis/ or its models/) folder; default $EMO_MODEL_DIR");
  sub->add_option("-o,--output", o->output, "Write a debug picture (PNG): boxes, keypoints, landmarks, masks");
  sub->add_option("--masks-dir", o->masks_dir, "Write Hallo's mask PNGs (face_mask, lip_mask, sep_*) into this folder");
  sub->add_option("--landmarks", o->landmarks, "Precomputed 478-point MediaPipe landmarks (.npy/.json/.txt) for Hallo's exact masks");
  sub->add_flag("--json", o->json, "Print JSON instead of text");
  sub->add_flag("--require-face", o->require_face, "Fail (exit 3) when no face is found instead of using the whole image");
  sub->add_flag("--square-crop", o->square_crop, "Crop non-square images to a square around the face first");
  sub->add_option("--face-expand-ratio", o->face_expand_ratio, "Face box expansion (Hallo's face_expand_ratio)");
  sub->add_option("--crop-expand-ratio", o->crop_expand_ratio, "Square crop side = face size x this");
  return [o] { return run_face(*o); };
}

}  // namespace emo::cli
