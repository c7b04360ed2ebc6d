// emo::validate (every bad GenerateParams value in one UsageError) and emo::image (strict image loading:
// truncated / corrupt files refused, pixel limit from the header, EXIF orientation applied once).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "emo/error.h"
#include "emo/face.h"
#include "emo/generate.h"
#include "emo/image.h"
#include "emo/model_spec.h"

namespace fs = std::filesystem;

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += x + "\n";
  return s;
}

std::string usage_message(const emo::GenerateParams& p, const emo::ModelPreset& pre) {
  try {
    emo::validate(p, pre);
  } catch (const emo::UsageError& e) {
    return e.what();
  }
  return "";
}

fs::path temp_dir() {
  auto d = fs::temp_directory_path() / ("emo_image_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}
void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), static_cast<std::streamsize>(s.size()));
}

cv::Mat busy(int w, int h) {
  cv::Mat img(h, w, CV_8UC3);
  cv::theRNG().state = 3;
  cv::randu(img, 0, 255);
  cv::GaussianBlur(img, img, {5, 5}, 1.5);
  return img;
}

std::string exif_jpeg(const cv::Mat& bgr, int orientation, bool little_endian) {
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", bgr, jpg, {cv::IMWRITE_JPEG_QUALITY, 100});
  std::string t;
  auto u16 = [&](int v) {
    if (little_endian) t += {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
    else t += {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
  };
  auto u32 = [&](uint32_t v) {
    if (little_endian) { u16(v & 0xffff); u16(v >> 16); }
    else { u16(v >> 16); u16(v & 0xffff); }
  };
  t += little_endian ? "II" : "MM";
  u16(42);
  u32(8);
  u16(2);                                  // two entries: an unrelated tag, then the orientation
  u16(0x010f); u16(2); u32(4); t += "abc"; t += '\0';  // Make, ASCII, inline
  u16(0x0112); u16(3); u32(1); u16(orientation); u16(0);
  u32(0);
  std::string payload = std::string("Exif\0\0", 6) + t;
  const size_t len = payload.size() + 2;
  std::string app1 = std::string("\xff\xe1", 2) + static_cast<char>(len >> 8) + static_cast<char>(len & 0xff) + payload;
  std::string bytes(jpg.begin(), jpg.end());
  return bytes.substr(0, 2) + app1 + bytes.substr(2);
}

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xffffffffu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}
std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

}  // namespace

TEST(Validate, EveryBadValueIsListedInOneMessage) {
  emo::GenerateParams p;
  p.width = 520;
  p.steps = -3;
  p.cfg_scale = 0.5;
  p.fps = -25;
  p.crf = 52;
  p.pose_weight = -1;
  p.speed = 5;
  p.max_audio_seconds = 0;
  p.sampler = "euler";
  auto probs = emo::parameter_problems(p);
  EXPECT_EQ(probs.size(), 9u) << joined(probs);
  const std::string msg = usage_message(p, emo::emo_preset());
  for (const char* what : {"width 520", "steps -3", "cfg_scale 0.5", "fps -25", "crf 52", "pose_weight -1", "speed 5",
                           "max_audio_seconds 0", "sampler 'euler'"})
    EXPECT_NE(msg.find(what), std::string::npos) << what << " missing from: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
}

TEST(Validate, ZeroMeansPresetNegativeIsAnError) {
  emo::GenerateParams p;  // all defaults: 0 = preset
  auto eff = emo::validate(p, emo::hallo_preset());
  EXPECT_EQ(eff.steps, 40);
  EXPECT_DOUBLE_EQ(eff.cfg_scale, 3.5);
  EXPECT_EQ(eff.fps, 25);
  EXPECT_EQ(eff.size, 512);
  for (auto set : std::vector<std::function<void(emo::GenerateParams&)>>{
           [](emo::GenerateParams& q) { q.steps = -1; }, [](emo::GenerateParams& q) { q.cfg_scale = -2; },
           [](emo::GenerateParams& q) { q.fps = -1; }, [](emo::GenerateParams& q) { q.width = -512; },
           [](emo::GenerateParams& q) { q.height = -512; }}) {
    emo::GenerateParams q;
    set(q);
    EXPECT_THROW(emo::validate(q, emo::hallo_preset()), emo::UsageError);
    EXPECT_THROW(emo::validate(q), emo::UsageError);
  }
}

TEST(Validate, SizeRules) {
  emo::GenerateParams p;
  p.width = 256;  // height follows width: portraits are square
  EXPECT_EQ(emo::validate(p, emo::hallo_preset()).size, 256);
  p.width = 0;
  p.height = 384;
  EXPECT_EQ(emo::validate(p, emo::hallo_preset()).size, 384);
  p.width = 256;
  p.height = 384;
  EXPECT_NE(usage_message(p, emo::hallo_preset()).find("must be equal"), std::string::npos);
  for (int w : {8, 520, 100, 4096}) {
    emo::GenerateParams q;
    q.width = w;
    EXPECT_THROW(emo::validate(q), emo::UsageError) << w;
  }
  emo::ModelPreset odd = emo::hallo_preset();
  odd.width = odd.height = 520;  // a preset from emo.json is checked as the effective value
  EXPECT_NE(usage_message(emo::GenerateParams{}, odd).find("520"), std::string::npos);
}

TEST(Validate, SpeedNeedsSpeedLayers) {
  emo::GenerateParams p;
  p.speed = 0.5;
  EXPECT_NO_THROW(emo::validate(p));                      // in range
  EXPECT_NO_THROW(emo::validate(p, emo::emo_preset()));  // the EMO preset has speed layers
  EXPECT_NE(usage_message(p, emo::hallo_preset()).find("no speed layers"), std::string::npos);
  p.speed = 1.0;
  EXPECT_NO_THROW(emo::validate(p, emo::hallo_preset()));
}

TEST(ImageFile, DecodesLikeImreadAndRefusesTruncatedFiles) {
  const auto d = temp_dir();
  const cv::Mat img = busy(300, 200);
  for (const char* ext : {".jpg", ".png", ".bmp", ".webp"}) {
    const auto p = d / (std::string("ok") + ext);
    ASSERT_TRUE(cv::imwrite(p.string(), img));
    cv::Mat got = emo::image::load_bgr(p.string());
    cv::Mat ref = cv::imread(p.string(), cv::IMREAD_COLOR);
    ASSERT_EQ(got.size(), ref.size()) << ext;
    EXPECT_EQ(cv::norm(got, ref, cv::NORM_INF), 0.0) << ext;
    const std::string bytes = read_bytes(p);
    const auto cut = d / (std::string("cut") + ext);
    write_bytes(cut, bytes.substr(0, bytes.size() * 2 / 3));
    try {
      emo::image::load_bgr(cut.string());
      ADD_FAILURE() << ext << ": a truncated file was accepted";
    } catch (const emo::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(cut.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
  // The first 3000 bytes of a JPEG: libjpeg's "Premature end of JPEG file" warning is an error here.
  const std::string jpg = read_bytes(d / "ok.jpg");
  write_bytes(d / "3000.jpg", jpg.substr(0, 3000));
  try {
    emo::image::load_rgb((d / "3000.jpg").string());
    ADD_FAILURE() << "accepted";
  } catch (const emo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("Premature end of JPEG file"), std::string::npos) << e.what();
  }
  // PNG: a flipped bit in the image data (CRC mismatch).
  std::string png = read_bytes(d / "ok.png");
  png[png.find("IDAT") + 40] ^= 0x01;
  write_bytes(d / "bitflip.png", png);
  try {
    emo::image::load_bgr((d / "bitflip.png").string());
    ADD_FAILURE() << "accepted";
  } catch (const emo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
  }
  // Not an image at all, empty file, missing file, a directory.
  write_bytes(d / "text.png", "hello");
  write_bytes(d / "empty.jpg", "");
  for (const auto& p : {d / "text.png", d / "empty.jpg", d / "missing.jpg", d})
    EXPECT_THROW(emo::image::load_bgr(p.string()), emo::InputError) << p;
}

TEST(ImageFile, PixelLimitIsCheckedFromTheHeader) {
  // A valid PNG signature + IHDR of 10000 x 10000 and nothing else: refused for its size, from the header alone.
  std::string ihdr_data = be32(10000) + be32(10000) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string ihdr = "IHDR" + ihdr_data;
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc32(ihdr));
  try {
    emo::image::read_header(png, "huge.png");
    ADD_FAILURE() << "accepted";
  } catch (const emo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("100 Mpx"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("limit of 64 Mpx"), std::string::npos) << e.what();
  }
  // The same for a JPEG whose SOF claims 9000 x 9000 (the header is read by libjpeg; no pixel is decoded).
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", busy(16, 16), jpg);
  std::string bytes(jpg.begin(), jpg.end());
  const size_t sof = bytes.find("\xff\xc0", 0, 2);
  ASSERT_NE(sof, std::string::npos);
  bytes[sof + 5] = static_cast<char>(9000 >> 8);
  bytes[sof + 6] = static_cast<char>(9000 & 0xff);
  bytes[sof + 7] = static_cast<char>(9000 >> 8);
  bytes[sof + 8] = static_cast<char>(9000 & 0xff);
  EXPECT_THROW(emo::image::decode_bgr(bytes, "huge.jpg"), emo::InputError);
  auto h = emo::image::read_header(std::string(jpg.begin(), jpg.end()), "small.jpg");
  EXPECT_EQ(h.format, "jpeg");
  EXPECT_EQ(h.width, 16);
}

TEST(ImageFile, ExifOrientationIsAppliedOnceForEveryReader) {
  const auto d = temp_dir();
  cv::Mat img = busy(120, 80);                             // stored 120 wide, 80 high
  cv::rectangle(img, {0, 0}, {19, 9}, cv::Scalar(255, 255, 255), -1);  // a white mark at the stored top-left
  for (bool le : {false, true}) {
    for (int o = 1; o <= 8; ++o) {
      const auto p = d / ("o" + std::to_string(o) + (le ? "le" : "be") + ".jpg");
      write_bytes(p, exif_jpeg(img, o, le));
      auto h = emo::image::read_header(read_bytes(p), p.string());
      EXPECT_EQ(h.orientation, o);
      cv::Mat got = emo::image::load_bgr(p.string());
      const bool swapped = o >= 5;
      EXPECT_EQ(got.cols, swapped ? 80 : 120) << o;
      EXPECT_EQ(got.rows, swapped ? 120 : 80) << o;
      cv::Mat expected = emo::image::apply_orientation(cv::imread(p.string(), cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION), o);
      EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 0.0) << o;
    }
  }
  // Orientation 6 (rotate 90 CW): the stored top-left corner ends up top-right.
  cv::Mat six = emo::image::load_bgr((d / "o6be.jpg").string());
  EXPECT_GT(cv::mean(six(cv::Rect(six.cols - 10, 0, 10, 20)))[0], 200);
  // The face analysis sees the same upright pixels (it used to ignore the tag) and hands them out for paste-back.
  emo::face::FaceOptions fo;
  fo.img_size = 64;
  fo.square_crop = true;
  emo::face::FaceAnalyzer fa(fo);
  cv::Mat rgb;
  auto a = fa.analyze_file((d / "o6be.jpg").string(), &rgb);
  EXPECT_EQ(a.crop.orig_w, 80);
  EXPECT_EQ(a.crop.orig_h, 120);
  EXPECT_EQ(rgb.cols, 80);
  EXPECT_EQ(rgb.rows, 120);
  EXPECT_LE(a.crop.rect.x + a.crop.rect.width, rgb.cols);
  EXPECT_LE(a.crop.rect.y + a.crop.rect.height, rgb.rows);
}
