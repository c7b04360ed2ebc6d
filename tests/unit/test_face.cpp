// emo::face building blocks that need no fixture: PIL resize, Hallo's region quirks, the ONNX input fix,
// the square crop, and the no-model / no-face paths.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>

#include "emo/error.h"
#include "emo/face.h"
#include "face/face_detail.h"
#include "face/onnx_graph.h"

using namespace emo::face;

TEST(FacePilResize, MatchesHandComputedTriangleFilter) {
  // 4 -> 2 pixels: scale 2, support 2; weights (3/7, 3/7, 1/7) and (1/7, 3/7, 3/7).
  cv::Mat src = (cv::Mat_<uchar>(1, 4) << 0, 100, 200, 255);
  cv::Mat out = pil_resize_bilinear(src, 2, 1);
  ASSERT_EQ(out.cols, 2);
  EXPECT_EQ(out.at<uchar>(0, 0), 71);   // 500 / 7 = 71.4
  EXPECT_EQ(out.at<uchar>(0, 1), 209);  // 366.25 / 1.75 = 209.3
  cv::Mat same = pil_resize_bilinear(src, 4, 1);
  EXPECT_EQ(cv::norm(same, src, cv::NORM_INF), 0.0);
  cv::Mat flat(37, 53, CV_8UC3, cv::Scalar(17, 130, 250));
  cv::Mat r = pil_resize_bilinear(flat, 8, 8);
  EXPECT_EQ(cv::norm(r, cv::Mat(8, 8, CV_8UC3, cv::Scalar(17, 130, 250)), cv::NORM_INF), 0.0);
}

TEST(FaceHalloRegion, ExpandShiftsInsideAndKeepsNumpySliceQuirk) {
  // Inside: mid = (10 + 30) // 2 = 20, side = 24, half 12.
  auto r = emo::face::detail::expand_region({10, 30, 10, 30}, 100, 100, 1.2);
  EXPECT_EQ(r.min_x, 8);
  EXPECT_EQ(r.max_x, 32);
  // Touching the left border: shifted right, size kept.
  r = emo::face::detail::expand_region({0, 40, 50, 60}, 100, 100, 2.0);
  EXPECT_EQ(r.min_x, 0);
  EXPECT_EQ(r.max_x, 80);
  // Wider than the image: after both shifts min_x < 0, and numpy reads the slice start from the end.
  r = emo::face::detail::expand_region({0, 100, 10, 20}, 100, 100, 1.2);
  EXPECT_LT(r.min_x, 0);
  cv::Mat m = cv::Mat::zeros(100, 100, CV_8U);
  auto box = emo::face::detail::fill_box(m, r);
  EXPECT_EQ(box[0], 100 + static_cast<int>(r.min_x));
  EXPECT_EQ(box[1], 100);
  EXPECT_EQ(cv::countNonZero(m.col(0)), 0);
  EXPECT_GT(cv::countNonZero(m.col(99)), 0);
}

TEST(FaceHalloRegion, BackgroundMaskTruncates) {
  cv::Mat v(1, 256, CV_8U);
  for (int i = 0; i < 256; ++i) v.at<uchar>(0, i) = static_cast<uchar>(i);
  cv::Mat bg = emo::face::detail::background_mask(v);
  EXPECT_EQ(bg.at<uchar>(0, 0), 255);
  EXPECT_EQ(bg.at<uchar>(0, 43), 254 - 43);  // the documented quirk
  EXPECT_EQ(bg.at<uchar>(0, 44), 255 - 44);
  int quirks = 0;
  for (int i = 0; i < 256; ++i) quirks += bg.at<uchar>(0, i) == 254 - i;
  EXPECT_EQ(quirks, 50);
}

TEST(FaceMasks, From106PointsIncludesForehead) {
  // A frontal synthetic 106-point face: jaw contour on an ellipse, brows, lips.
  std::vector<cv::Point2f> p(106, cv::Point2f(200, 200));
  for (int i = 1; i <= 16; ++i) {
    p[i] = cv::Point2f(120.f + 5 * (i - 1), 150.f + 8 * (i - 1));       // one side, top to bottom
    p[16 + i] = cv::Point2f(280.f - 5 * (i - 1), 150.f + 8 * (i - 1));  // the other side
  }
  p[0] = cv::Point2f(200, 280);
  for (int i = 43; i <= 51; ++i) p[i] = cv::Point2f(150.f + 5 * (i - 43), 150);
  for (int i = 97; i <= 105; ++i) p[i] = cv::Point2f(210.f + 5 * (i - 97), 150);
  for (int i : {52, 64, 63, 71, 67, 68, 61, 58, 59, 53, 56, 55}) p[i] = cv::Point2f(200, 240);
  p[52] = cv::Point2f(180, 240);
  p[61] = cv::Point2f(220, 240);
  p[71] = cv::Point2f(200, 232);
  p[53] = cv::Point2f(200, 250);
  auto m = hallo_masks_from_106(p, 400, 400, 1.2);
  // Forehead: brow 150 - 0.22 * (280 - 150) = 121.4 -> top of the unexpanded box; the 1.2 expansion goes above.
  EXPECT_LT(m.face_box[2], 121);
  EXPECT_GE(m.face_box[3], 280);
  EXPECT_EQ(m.face_mask.rows, 400);
  EXPECT_EQ(m.sep_face.size(), cv::Size(64, 64));
  EXPECT_GT(cv::countNonZero(m.lip_mask), 0);
}

namespace {
void put_varint(std::vector<unsigned char>& b, uint64_t v) {
  while (v >= 0x80) b.push_back(static_cast<unsigned char>(v | 0x80)), v >>= 7;
  b.push_back(static_cast<unsigned char>(v));
}
std::vector<unsigned char> len_field(int num, const std::vector<unsigned char>& payload) {
  std::vector<unsigned char> b;
  put_varint(b, (static_cast<uint64_t>(num) << 3) | 2);
  put_varint(b, payload.size());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}
std::vector<unsigned char> str_bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::vector<unsigned char> cat(std::initializer_list<std::vector<unsigned char>> parts) {
  std::vector<unsigned char> o;
  for (const auto& p : parts) o.insert(o.end(), p.begin(), p.end());
  return o;
}
std::vector<unsigned char> dim_value(uint64_t v) {
  std::vector<unsigned char> d{0x08};
  put_varint(d, v);
  return len_field(1, d);
}
}  // namespace

TEST(FaceOnnx, FixInputHwRewritesSymbolicDimsOfAnyLength) {
  auto shape = cat({dim_value(1), dim_value(3), len_field(1, len_field(2, str_bytes("height"))), len_field(1, len_field(2, str_bytes("?")))});
  auto vi = [&](const std::string& name, const std::vector<unsigned char>& sh) {
    return len_field(11, cat({len_field(1, str_bytes(name)), len_field(2, len_field(1, len_field(2, sh)))}));
  };
  auto init = len_field(5, len_field(8, str_bytes("w0")));
  auto node = len_field(1, len_field(3, str_bytes("Conv_0")));
  auto out = len_field(12, len_field(1, str_bytes("y")));
  auto graph = cat({node, init, vi("w0", cat({dim_value(8)})), vi("data", shape), out});
  auto model = cat({std::vector<unsigned char>{0x08, 0x07}, len_field(7, graph)});
  auto s = onnx::summarize(model);
  ASSERT_EQ(s.inputs.size(), 1u);  // the initializer listed as input is skipped
  EXPECT_EQ(s.inputs[0].name, "data");
  EXPECT_EQ(s.inputs[0].dims, (std::vector<int64_t>{1, 3, -1, -1}));
  EXPECT_EQ(s.node_names, std::vector<std::string>{"Conv_0"});
  auto fixed = onnx::fix_input_hw(model, 640, 480);
  auto f = onnx::summarize(fixed);
  ASSERT_EQ(f.inputs.size(), 1u);
  EXPECT_EQ(f.inputs[0].dims, (std::vector<int64_t>{1, 3, 640, 480}));
  EXPECT_EQ(f.outputs.size(), 1u);
  EXPECT_EQ(f.node_names, s.node_names);
  std::vector<unsigned char> bad(model.begin(), model.begin() + model.size() / 2);
  EXPECT_THROW(onnx::summarize(bad), std::runtime_error);
}

TEST(FaceCrop, SquareAroundFaceStaysInside) {
  auto c = square_crop_around(300, 500, cv::Vec4f(100, 20, 200, 140), 2.0);
  EXPECT_EQ(c.rect.width, c.rect.height);
  EXPECT_EQ(c.rect.width, 240);
  EXPECT_EQ(c.rect.y, 0);  // shifted down inside the image
  EXPECT_EQ(c.rect.x, 30);
  EXPECT_TRUE(c.cropped());
  auto big = square_crop_around(300, 500, cv::Vec4f(0, 0, 300, 400), 2.0);
  EXPECT_EQ(big.rect.width, 300);  // limited by the short side
  EXPECT_EQ(big.rect.x, 0);
}

TEST(FaceAnalyzerFallback, NoModelsNoFaceUsesWholeImage) {
  FaceOptions o;  // no model dir: Haar cascade (opencv-data) or nothing
  FaceAnalyzer fa(o);
  EXPECT_TRUE(fa.models().empty());
  cv::Mat flat(180, 240, CV_8UC3, cv::Scalar(90, 120, 150));
  auto a = fa.analyze_rgb(flat);
  EXPECT_EQ(a.picked, -1);
  EXPECT_EQ(a.mask_source, "whole_image");
  EXPECT_FALSE(a.warnings.empty());
  ASSERT_EQ(a.embedding.size(), 512u);
  for (float v : a.embedding) ASSERT_EQ(v, 0.f);
  EXPECT_EQ(a.masks.face_box, cv::Vec4i(0, 240, 0, 180));
  EXPECT_EQ(cv::countNonZero(a.masks.face_mask), 240 * 180);
  EXPECT_EQ(cv::countNonZero(a.masks.face_mask_blur), 64 * 64);  // face weight everywhere
  EXPECT_EQ(cv::countNonZero(a.masks.sep_background), 0);
  EXPECT_GT(cv::countNonZero(a.masks.sep_lip), 0);
  EXPECT_EQ(a.ref_image.size(), cv::Size(512, 512));
  EXPECT_EQ(a.full_mask[0].size(), cv::Size(64, 64));
  EXPECT_EQ(a.lip_mask[3].size(), cv::Size(8, 8));
  o.require_face = true;
  FaceAnalyzer strict(o);
  EXPECT_THROW(strict.analyze_rgb(flat), emo::InputError);
}

TEST(FaceAnalyzerFallback, SquareCropWithoutFaceIsCentred) {
  FaceOptions o;
  o.square_crop = true;
  FaceAnalyzer fa(o);
  cv::Mat flat(200, 320, CV_8UC3, cv::Scalar(40, 40, 40));
  auto a = fa.analyze_rgb(flat);
  EXPECT_EQ(a.width, 200);
  EXPECT_EQ(a.height, 200);
  EXPECT_EQ(a.crop.rect, cv::Rect(60, 0, 200, 200));
  EXPECT_TRUE(a.crop.cropped());
}

TEST(FaceAnalyzerFallback, HaarOnDrawnFaceOrNoFace) {
  // A drawn face may or may not trigger the cascade; either way the result must be consistent.
  FaceAnalyzer fa(FaceOptions{});
  cv::Mat img(400, 400, CV_8UC3, cv::Scalar(200, 200, 200));
  cv::ellipse(img, cv::Point(200, 210), cv::Size(110, 145), 0, 0, 360, cv::Scalar(150, 170, 210), cv::FILLED);
  cv::ellipse(img, cv::Point(155, 180), cv::Size(22, 10), 0, 0, 360, cv::Scalar(40, 40, 40), cv::FILLED);
  cv::ellipse(img, cv::Point(245, 180), cv::Size(22, 10), 0, 0, 360, cv::Scalar(40, 40, 40), cv::FILLED);
  cv::rectangle(img, cv::Point(130, 150), cv::Point(180, 158), cv::Scalar(50, 50, 50), cv::FILLED);
  cv::rectangle(img, cv::Point(220, 150), cv::Point(270, 158), cv::Scalar(50, 50, 50), cv::FILLED);
  cv::line(img, cv::Point(200, 190), cv::Point(200, 240), cv::Scalar(110, 120, 160), 6);
  cv::ellipse(img, cv::Point(200, 280), cv::Size(40, 12), 0, 0, 360, cv::Scalar(60, 60, 160), cv::FILLED);
  auto a = fa.analyze_rgb(img);
  if (a.picked >= 0) {
    EXPECT_EQ(a.detector, "haar");
    EXPECT_EQ(a.mask_source, "haar_estimate");
    EXPECT_GT(cv::countNonZero(a.masks.lip_mask), 0);
  } else {
    EXPECT_EQ(a.mask_source, "whole_image");
  }
  EXPECT_FALSE(a.has_embedding);
}

TEST(FaceCrop, PasteBackRestoresTheOriginalOutsideTheCrop) {
  cv::Mat orig(100, 160, CV_8UC3, cv::Scalar(10, 20, 30));
  CropInfo c{cv::Rect(30, 0, 100, 100), 160, 100};
  cv::Mat frame(512, 512, CV_8UC3, cv::Scalar(200, 100, 50));
  cv::Mat out = paste_back(orig, frame, c);
  EXPECT_EQ(out.size(), orig.size());
  EXPECT_EQ(out.at<cv::Vec3b>(50, 10), cv::Vec3b(10, 20, 30));
  EXPECT_EQ(out.at<cv::Vec3b>(50, 80), cv::Vec3b(200, 100, 50));
  EXPECT_THROW(paste_back(orig, frame, CropInfo{cv::Rect(100, 0, 100, 100), 160, 100}), emo::InputError);
}

TEST(FaceLandmarkFile, TextJsonAndNpy) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("emo_face_lmk_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream t(dir / "n.txt");
    for (int i = 0; i < 478; ++i) t << (i % 100) / 100.0 << ", " << 0.5 << ", 0.01\n";  // normalised x, y, z
    std::ofstream j(dir / "p.json");
    j << "[";
    for (int i = 0; i < 478; ++i) j << (i ? "," : "") << "[" << i << ", " << 2 * i << "]";
    j << "]";
    // .npy v1.0, float32 (478, 2)
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (478, 2), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::ofstream n(dir / "p.npy", std::ios::binary);
    n.write("\x93NUMPY\x01\x00", 8);
    uint16_t hl = static_cast<uint16_t>(header.size());
    n.write(reinterpret_cast<const char*>(&hl), 2);
    n << header;
    for (int i = 0; i < 478; ++i) {
      float xy[2] = {static_cast<float>(i) + 0.5f, 300.f};
      n.write(reinterpret_cast<const char*>(xy), 8);
    }
  }
  auto t = read_mediapipe_landmarks((dir / "n.txt").string(), 200, 100);
  ASSERT_EQ(t.size(), 478u);
  EXPECT_DOUBLE_EQ(t[10].x, 0.1 * 200);
  EXPECT_DOUBLE_EQ(t[10].y, 50.0);
  auto j = read_mediapipe_landmarks((dir / "p.json").string(), 200, 100);
  EXPECT_DOUBLE_EQ(j[477].y, 954.0);  // pixels kept as they are
  auto n = read_mediapipe_landmarks((dir / "p.npy").string(), 200, 100);
  EXPECT_DOUBLE_EQ(n[3].x, 3.5);
  EXPECT_DOUBLE_EQ(n[3].y, 300.0);
  std::ofstream(dir / "short.txt") << "1 2\n3 4\n";
  EXPECT_THROW(read_mediapipe_landmarks((dir / "short.txt").string(), 10, 10), emo::InputError);
  fs::remove_all(dir);
}
