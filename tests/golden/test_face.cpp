// Golden parity of emo::face against insightface 0.7.3 / hallo (fixtures ../shared/golden/face/*).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <opencv2/dnn.hpp>

#include "emo/face.h"
#include "emo/face_tensors.h"
#include "face/face_detail.h"
#include "face/face_models.h"
#include "face/onnx_graph.h"
#include "support/golden.h"

namespace fs = std::filesystem;
using namespace emo::face;

namespace {

cv::Mat to_mat(const at::Tensor& t) {
  auto c = t.contiguous();
  int type = c.scalar_type() == at::kByte ? CV_8U : CV_32F;
  if (c.scalar_type() != at::kByte) c = c.to(at::kFloat).contiguous();
  int ch = c.dim() == 3 ? static_cast<int>(c.size(2)) : 1;
  cv::Mat m(static_cast<int>(c.size(0)), static_cast<int>(c.dim() >= 2 ? c.size(1) : 1), CV_MAKETYPE(type, ch), c.data_ptr());
  return m.clone();
}

cv::Mat blob_of(const at::Tensor& t) {
  auto c = t.to(at::kFloat).contiguous();
  std::vector<int> sizes(c.sizes().begin(), c.sizes().end());
  return cv::Mat(static_cast<int>(sizes.size()), sizes.data(), CV_32F, c.data_ptr()).clone();
}

at::Tensor to_tensor(const cv::Mat& m) {
  cv::Mat c = m.isContinuous() ? m : m.clone();
  auto dtype = m.depth() == CV_8U ? at::kByte : at::kFloat;
  std::vector<int64_t> shape;
  if (m.dims > 2) {
    for (int i = 0; i < m.dims; ++i) shape.push_back(m.size[i]);
  } else {
    shape = {m.rows, m.cols};
    if (m.channels() > 1) shape.push_back(m.channels());
  }
  return torch::from_blob(c.data, shape, dtype).clone();
}

at::Tensor dets_tensor(const std::vector<Detection>& d) {
  auto t = torch::zeros({static_cast<int64_t>(d.size()), 5});
  for (size_t i = 0; i < d.size(); ++i) {
    for (int j = 0; j < 4; ++j) t[i][j] = d[i].box[j];
    t[i][4] = d[i].score;
  }
  return t;
}

at::Tensor kps_tensor(const std::vector<Detection>& d) {
  auto t = torch::zeros({static_cast<int64_t>(d.size()), 5, 2});
  for (size_t i = 0; i < d.size(); ++i)
    for (int j = 0; j < 5; ++j) {
      t[i][j][0] = d[i].kps[j].x;
      t[i][j][1] = d[i].kps[j].y;
    }
  return t;
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return 1e30;
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

std::vector<emo::face::detail::ScrfdLevel> fixture_levels(const emo::test::Fixture& fx, int k, const std::vector<int>& strides) {
  std::vector<emo::face::detail::ScrfdLevel> levels;
  for (int s : strides) {
    emo::face::detail::ScrfdLevel lv;
    lv.stride = s;
    std::string p = "raw_" + std::to_string(k) + ".";
    lv.score = to_mat(fx.input(p + "score_" + std::to_string(s)));
    lv.bbox = to_mat(fx.input(p + "bbox_" + std::to_string(s)));
    lv.kps = to_mat(fx.input(p + "kps_" + std::to_string(s)));
    levels.push_back(lv);
  }
  return levels;
}

std::array<cv::Point2f, 5> kps_of(const at::Tensor& t) {
  auto c = t.to(at::kFloat).contiguous();
  std::array<cv::Point2f, 5> k;
  for (int i = 0; i < 5; ++i) k[i] = cv::Point2f(c[i][0].item<float>(), c[i][1].item<float>());
  return k;
}

}  // namespace

TEST(FaceGolden, ScrfdDecodeFromRawOutputs) {
  EMO_GOLDEN_FIXTURE(fx, "face/scrfd_decode");
  const auto& cfg = fx.config();
  const int in_w = cfg["det_size"][0], in_h = cfg["det_size"][1];
  const float thresh = cfg["det_thresh"], nms = cfg["nms_thresh"];
  const int anchors = cfg["num_anchors"];
  const std::vector<int> strides = cfg["feat_stride_fpn"].get<std::vector<int>>();
  for (int k = 0; k < 2; ++k) {
    SCOPED_TRACE("image_" + std::to_string(k));
    cv::Mat img = to_mat(fx.input("image_" + std::to_string(k)));
    auto lb = emo::face::detail::letterbox(img, in_w, in_h);
    auto nhw = fx.output("new_hw_" + std::to_string(k));
    EXPECT_EQ(lb.new_h, nhw[0].item<int64_t>());
    EXPECT_EQ(lb.new_w, nhw[1].item<int64_t>());
    if (fx.has("output.blob_" + std::to_string(k))) {
      float m = cfg["input_mean"];
      cv::Mat blob = cv::dnn::blobFromImage(lb.image, 1.0 / cfg["input_std"].get<double>(), cv::Size(in_w, in_h),
                                            cv::Scalar(m, m, m), true);
      EXPECT_EQ(max_abs(to_tensor(blob), fx.output("blob_" + std::to_string(k))), 0.0);
    }
    if (fx.has("output.det_img_" + std::to_string(k)))
      EXPECT_EQ(max_abs(to_tensor(lb.image), fx.output("det_img_" + std::to_string(k))), 0.0);

    emo::face::detail::DecodeStats st;
    auto dets = emo::face::detail::scrfd_decode(fixture_levels(fx, k, strides), in_w, in_h, anchors, lb.det_scale, thresh, nms, &st);
    EXPECT_EQ(st.candidates, fx.output("num_candidates_" + std::to_string(k)).item<int64_t>());
    auto per = fx.output("candidates_per_stride_" + std::to_string(k));
    for (size_t i = 0; i < strides.size(); ++i) EXPECT_EQ(st.candidates_per_level[i], per[i].item<int64_t>());
    auto det_ref = fx.output("det_" + std::to_string(k));
    ASSERT_EQ(static_cast<int64_t>(dets.size()), det_ref.size(0));
    double e_det = max_abs(dets_tensor(dets), det_ref), e_kps = max_abs(kps_tensor(dets), fx.output("kps_" + std::to_string(k)));
    EXPECT_LE(e_det, 1e-3) << "det max|diff| px";
    EXPECT_LE(e_kps, 1e-3) << "kps max|diff| px";
    std::printf("[scrfd image_%d] %zu faces, det max|diff| %.3g, kps max|diff| %.3g\n", k, dets.size(), e_det, e_kps);
    EXPECT_EQ(emo::face::detail::hallo_pick(dets), fx.output("hallo_pick_" + std::to_string(k)).item<int64_t>());

    auto top2 = emo::face::detail::limit_max_num(dets, 2, img.rows, img.cols);
    EXPECT_LE(max_abs(dets_tensor(top2), fx.output("det_maxnum2_" + std::to_string(k))), 1e-3);
    EXPECT_LE(max_abs(kps_tensor(top2), fx.output("kps_maxnum2_" + std::to_string(k))), 1e-3);
  }
}

TEST(FaceGolden, ScrfdThroughCvDnnWithInputFix) {
  EMO_GOLDEN_FIXTURE(fx, "face/scrfd_decode");
  const auto& cfg = fx.config();
  const std::string model = fx.path(cfg["model_file"]);
  // As shipped, OpenCV 4.6 rejects the symbolic H/W; the in-memory fix makes it load.
  auto info = emo::face::detail::route_model(model);
  EXPECT_EQ(info.task, "detection");
  EXPECT_FLOAT_EQ(info.input_mean, cfg["input_mean"].get<float>());
  EXPECT_FLOAT_EQ(info.input_std, cfg["input_std"].get<float>());
  auto bytes = onnx::read_file_bytes(model);
  auto fixed = onnx::fix_input_hw(bytes, cfg["det_size"][1], cfg["det_size"][0]);
  auto summary = onnx::summarize(fixed);
  ASSERT_EQ(summary.inputs.size(), 1u);
  EXPECT_EQ(summary.inputs[0].dims[2], cfg["det_size"][1].get<int64_t>());
  EXPECT_EQ(summary.inputs[0].dims[3], cfg["det_size"][0].get<int64_t>());
  EXPECT_EQ(summary.outputs.size(), cfg["output_order"].size());

  auto det = emo::face::detail::load_detector(info, cfg["det_size"][0], cfg["det_size"][1]);
  const std::vector<int> strides = cfg["feat_stride_fpn"].get<std::vector<int>>();
  auto levels = emo::face::detail::run_detector_blob(det, blob_of(fx.output("blob_0")));
  double worst = 0.0;
  for (size_t i = 0; i < strides.size(); ++i) {
    std::string p = "raw_0.";
    std::string s = std::to_string(strides[i]);
    worst = std::max(worst, max_abs(to_tensor(levels[i].score), fx.input(p + "score_" + s)));
    worst = std::max(worst, max_abs(to_tensor(levels[i].bbox), fx.input(p + "bbox_" + s)));
    worst = std::max(worst, max_abs(to_tensor(levels[i].kps), fx.input(p + "kps_" + s)));
  }
  EXPECT_LE(worst, 1e-5);
  std::printf("[scrfd cv::dnn] raw outputs max|diff| %.3g\n", worst);

  for (int k = 0; k < 2; ++k) {
    auto dets = emo::face::detail::detect_scrfd(det, to_mat(fx.input("image_" + std::to_string(k))), cfg["det_thresh"], cfg["nms_thresh"]);
    auto ref = fx.output("det_" + std::to_string(k));
    ASSERT_EQ(static_cast<int64_t>(dets.size()), ref.size(0)) << "image_" << k;
    EXPECT_LE(max_abs(dets_tensor(dets), ref), 1e-3) << "image_" << k;
    EXPECT_EQ(emo::face::detail::hallo_pick(dets), fx.output("hallo_pick_" + std::to_string(k)).item<int64_t>());
  }
}

TEST(FaceGolden, ArcfaceAlignEmbed) {
  EMO_GOLDEN_FIXTURE(fx, "face/arcface_align_embed");
  const auto& cfg = fx.config();
  const int size = cfg["image_size"];
  auto info = emo::face::detail::route_model(fx.path(cfg["model_file"]));
  EXPECT_EQ(info.task, "recognition");
  EXPECT_FLOAT_EQ(info.input_mean, cfg["input_mean"].get<float>());
  EXPECT_FLOAT_EQ(info.input_std, cfg["input_std"].get<float>());
  auto net = emo::face::detail::load_plain(info);
  for (int c = 0; c < cfg["num_cases"].get<int>(); ++c) {
    std::string p = "case" + std::to_string(c) + ".";
    SCOPED_TRACE(p);
    cv::Mat img = to_mat(fx.input("image_" + std::to_string(fx.input(p + "image_index").item<int64_t>())));
    auto kps = kps_of(fx.input(p + "kps"));
    cv::Matx23d M;
    cv::Mat aligned = emo::face::detail::norm_crop(img, kps, size, &M);
    auto Mref = fx.output(p + "M").to(at::kDouble);
    auto Mt = torch::tensor({M(0, 0), M(0, 1), M(0, 2), M(1, 0), M(1, 1), M(1, 2)}, at::kDouble).view({2, 3});
    EXPECT_TRUE(emo::test::AllClose(Mt, Mref, 1e-5));
    auto diff = (to_tensor(aligned).to(at::kInt) - fx.output(p + "aligned").to(at::kInt)).abs();
    double frac = (diff > 0).sum().item<double>() / diff.numel();
    EXPECT_LE(diff.max().item<int>(), 1);
    EXPECT_LE(frac, 1e-3);
    cv::Mat blob = emo::face::detail::arcface_blob(to_mat(fx.output(p + "aligned")), info);
    EXPECT_EQ(max_abs(to_tensor(blob), fx.output(p + "blob")), 0.0);
    net.setInput(blob);
    cv::Mat emb = net.forward();
    auto e = torch::from_blob(emb.ptr<float>(), {static_cast<int64_t>(emb.total())}, at::kFloat).clone();
    EXPECT_TRUE(emo::test::AllClose(e, fx.output(p + "embedding"), 1e-4));
    auto own = emo::face::detail::arcface_embed(net, info, img, kps);
    auto o = torch::from_blob(own.data(), {static_cast<int64_t>(own.size())}, at::kFloat).clone();
    EXPECT_TRUE(emo::test::AllClose(o, fx.output(p + "embedding"), 1e-3));
    std::printf("[arcface %s] M max|diff| %.3g, crop pixels off %.4f%%, embedding max|diff| %.3g (own crop %.3g)\n",
                p.c_str(), max_abs(Mt, Mref), 100 * frac, max_abs(e, fx.output(p + "embedding")),
                max_abs(o, fx.output(p + "embedding")));
  }
}

TEST(FaceGolden, Landmark106) {
  EMO_GOLDEN_FIXTURE(fx, "face/landmark106");
  const auto& cfg = fx.config();
  const int size = cfg["input_size"];
  auto info = emo::face::detail::route_model(fx.path(cfg["model_file"]));
  EXPECT_EQ(info.task, "landmark_2d_" + std::to_string(cfg["lmk_num"].get<int>()));
  EXPECT_FLOAT_EQ(info.input_mean, cfg["input_mean"].get<float>());
  EXPECT_FLOAT_EQ(info.input_std, cfg["input_std"].get<float>());
  auto net = emo::face::detail::load_plain(info);
  for (int c = 0; c < cfg["num_cases"].get<int>(); ++c) {
    std::string p = "case" + std::to_string(c) + ".";
    SCOPED_TRACE(p);
    cv::Mat img = to_mat(fx.input("image_" + std::to_string(fx.input(p + "image_index").item<int64_t>())));
    auto bt = fx.input(p + "bbox").to(at::kFloat);
    cv::Vec4f box(bt[0].item<float>(), bt[1].item<float>(), bt[2].item<float>(), bt[3].item<float>());
    cv::Matx23d M;
    cv::Mat aimg = emo::face::detail::landmark_crop(img, box, size, &M);
    auto Mt = torch::tensor({M(0, 0), M(0, 1), M(0, 2), M(1, 0), M(1, 1), M(1, 2)}, at::kDouble).view({2, 3});
    EXPECT_TRUE(emo::test::AllClose(Mt, fx.output(p + "M").to(at::kDouble), 1e-6));
    auto diff = (to_tensor(aimg).to(at::kInt) - fx.output(p + "aimg").to(at::kInt)).abs();
    EXPECT_LE(diff.max().item<int>(), 1);
    EXPECT_LE((diff > 0).sum().item<double>() / diff.numel(), 1e-3);
    float m = info.input_mean;
    cv::Mat blob = cv::dnn::blobFromImage(to_mat(fx.output(p + "aimg")), 1.0 / info.input_std, cv::Size(size, size),
                                          cv::Scalar(m, m, m), true);
    if (fx.has("output." + p + "blob")) EXPECT_EQ(max_abs(to_tensor(blob), fx.output(p + "blob")), 0.0);
    net.setInput(blob);
    cv::Mat raw = net.forward();
    auto rt = torch::from_blob(raw.ptr<float>(), {1, static_cast<int64_t>(raw.total())}, at::kFloat).clone();
    double e_raw = max_abs(rt, fx.output(p + "raw"));
    EXPECT_LE(e_raw, 1e-5);
    auto ref_raw = fx.output(p + "raw").to(at::kFloat).contiguous();
    auto pts = emo::face::detail::landmark_decode(ref_raw.data_ptr<float>(), static_cast<int>(ref_raw.numel()), cfg["lmk_num"], size, M);
    auto lt = torch::zeros({static_cast<int64_t>(pts.size()), 2});
    for (size_t i = 0; i < pts.size(); ++i) lt[i][0] = pts[i].x, lt[i][1] = pts[i].y;
    double e_lmk = max_abs(lt, fx.output(p + "landmarks"));
    EXPECT_LE(e_lmk, 1e-3);
    auto full = emo::face::detail::landmark_run(net, info, img, box, cfg["lmk_num"]);
    auto ft = torch::zeros({static_cast<int64_t>(full.size()), 2});
    for (size_t i = 0; i < full.size(); ++i) ft[i][0] = full[i].x, ft[i][1] = full[i].y;
    double e_full = max_abs(ft, fx.output(p + "landmarks"));
    EXPECT_LE(e_full, 1e-2);
    std::printf("[landmark106 %s] raw max|diff| %.3g, landmarks %.3g px (end to end %.3g px)\n", p.c_str(), e_raw, e_lmk, e_full);
  }
}

TEST(FaceGolden, HalloMasks) {
  EMO_GOLDEN_FIXTURE(fx, "face/hallo_masks");
  const auto& cfg = fx.config();
  // The fixture's id lists are Hallo's; ours must be the same.
  EXPECT_EQ(cfg["silhouette_ids"].get<std::vector<int>>(),
            std::vector<int>(emo::face::detail::kSilhouetteIds.begin(), emo::face::detail::kSilhouetteIds.end()));
  EXPECT_EQ(cfg["lip_ids"].get<std::vector<int>>(), std::vector<int>(emo::face::detail::kLipIds.begin(), emo::face::detail::kLipIds.end()));
  for (int c = 0; c < cfg["num_cases"].get<int>(); ++c) {
    std::string p = "case" + std::to_string(c) + ".";
    SCOPED_TRACE(p);
    auto lt = fx.input(p + "landmarks").to(at::kDouble).contiguous();
    std::vector<cv::Point2d> pts;
    for (int64_t i = 0; i < lt.size(0); ++i) pts.emplace_back(lt[i][0].item<double>(), lt[i][1].item<double>());
    int h = static_cast<int>(fx.input(p + "height").item<int64_t>()), w = static_cast<int>(fx.input(p + "width").item<int64_t>());
    auto m = hallo_masks_from_mediapipe(pts, h, w, fx.input(p + "face_expand_ratio").item<float>());
    auto box = [](const cv::Vec4i& b) { return torch::tensor({b[0], b[1], b[2], b[3]}, at::kLong); };
    EXPECT_TRUE(torch::equal(box(m.lip_box), fx.output(p + "lip_box")));
    EXPECT_TRUE(torch::equal(box(m.face_box), fx.output(p + "face_box")));
    for (auto [name, mat] : {std::pair<const char*, const cv::Mat*>{"lip_mask", &m.lip_mask}, {"face_mask", &m.face_mask},
                             {"face_mask_blur", &m.face_mask_blur}, {"sep_lip", &m.sep_lip},
                             {"sep_background", &m.sep_background}, {"sep_face", &m.sep_face}}) {
      EXPECT_EQ(max_abs(to_tensor(*mat), fx.output(p + name)), 0.0) << name;
    }
  }
}

TEST(FaceGolden, HalloPreprocess) {
  EMO_GOLDEN_FIXTURE(fx, "face/hallo_preprocess");
  const auto& cfg = fx.config();
  // The stand-in pack, laid out as Hallo's pretrained_models/face_analysis/models/ (links, in a temp dir).
  fs::path root = fs::temp_directory_path() / ("emo_face_pack_" + std::to_string(::getpid()));
  fs::create_directories(root / "face_analysis" / "models");
  fs::path golden = fs::path(fx.dir()).parent_path();
  fs::create_symlink(fs::absolute(golden / "scrfd_decode" / "model.onnx"), root / "face_analysis/models/scrfd_10g_bnkps.onnx");
  fs::create_symlink(fs::absolute(golden / "arcface_align_embed" / "model.onnx"), root / "face_analysis/models/glintr100.onnx");
  fs::create_symlink(fs::absolute(golden / "landmark106" / "model.onnx"), root / "face_analysis/models/2d106det.onnx");
  FaceOptions o;
  o.model_dir = root.string();
  o.img_size = cfg["img_size"][0];
  o.face_expand_ratio = fx.input("face_expand_ratio").item<float>();
  PortraitAnalysis a;
  {
    FaceAnalyzer fa(o);
    ASSERT_EQ(fa.models().size(), 3u);
    EXPECT_EQ(fa.models()[0].task, "landmark_2d_106");  // sorted file names: 2d106det, glintr100, scrfd
    auto lt = fx.input("landmarks").to(at::kDouble).contiguous();
    std::vector<cv::Point2d> pts;
    for (int64_t i = 0; i < lt.size(0); ++i) pts.emplace_back(lt[i][0].item<double>(), lt[i][1].item<double>());
    a = fa.analyze_rgb(to_mat(fx.input("image_rgb")), &pts);
  }
  fs::remove_all(root);
  EXPECT_EQ(a.mask_source, "mediapipe");
  ASSERT_GE(a.picked, 0);
  const auto& f = a.faces[a.picked];
  auto bbox = torch::tensor({f.box[0], f.box[1], f.box[2], f.box[3]});
  EXPECT_LE(max_abs(bbox, fx.output("face_bbox")), 1e-3);
  auto emb = torch::from_blob(a.embedding.data(), {512}, at::kFloat).clone();
  EXPECT_TRUE(emo::test::AllClose(emb, fx.output("face_emb"), 1e-4));
  double e_ref = max_abs(to_tensor(a.ref_image), fx.output("ref_img_resized_u8"));
  double e_region = max_abs(to_tensor(a.face_region), fx.output("face_region_u8"));
  EXPECT_EQ(e_ref, 0.0);
  EXPECT_EQ(e_region, 0.0);
  double worst = 0.0;
  for (int i = 0; i < 4; ++i) {
    for (auto [name, mat] : {std::pair<const char*, const cv::Mat*>{"full_mask", &a.full_mask[i]}, {"face_mask", &a.face_mask[i]},
                             {"lip_mask", &a.lip_mask[i]}}) {
      auto t = to_tensor(*mat).to(at::kFloat).div(255.0).view({1, -1});
      double e = max_abs(t, fx.output(std::string(name) + "." + std::to_string(i)));
      EXPECT_LE(e, 1e-6) << name << "." << i;
      worst = std::max(worst, e);
    }
  }
  // The tensors hallo's preprocess returns.
  auto t = to_hallo_inputs(a);
  auto ref_u8 = fx.output("ref_img_resized_u8").permute({2, 0, 1}).to(at::kFloat);
  EXPECT_TRUE(emo::test::AllClose(t.ref_image, (ref_u8 / 255.0 - 0.5) / 0.5, 1e-6));
  auto region = fx.output("face_region_u8").to(at::kFloat).div(255.0).unsqueeze(0).expand({3, -1, -1});
  EXPECT_TRUE(emo::test::AllClose(t.face_mask, region, 1e-6));
  EXPECT_TRUE(emo::test::AllClose(t.face_emb, fx.output("face_emb"), 1e-4));
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(emo::test::AllClose(t.full_mask[i], fx.output("full_mask." + std::to_string(i)), 1e-6));  // README allows 1/255; we match exactly
    EXPECT_TRUE(emo::test::AllClose(t.face_masks[i], fx.output("face_mask." + std::to_string(i)), 1e-6));  // README allows 1/255; we match exactly
    EXPECT_TRUE(emo::test::AllClose(t.lip_masks[i], fx.output("lip_mask." + std::to_string(i)), 1e-6));  // README allows 1/255; we match exactly
  }
  std::printf("[hallo_preprocess] ref image max|diff| %g, face region %g, mask lists %.3g, embedding %.3g\n", e_ref, e_region,
              worst, max_abs(emb, fx.output("face_emb")));
}
