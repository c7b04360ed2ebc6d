// `emo eval` on media files: Sync-C/D from a video's own audio track, F-SIM with the golden stand-in face
// models, the baseline check (--baseline / --result, exit 7), and `emo cut` (HDTF clip preparation).
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "emo/audio.h"
#include "emo/eval.h"
#include "emo/face.h"
#include "emo/state_dict.h"
#include "emo/video.h"
#include "support/golden.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
namespace ev = emo::eval;
using emo::test::run_cli;

namespace {
fs::path scratch(const std::string& name) {
  auto d = fs::temp_directory_path() / ("emo_eval_media_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }
nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}
at::Tensor decode_frames(const fs::path& p) {
  emo::video::VideoReader rd(p.string());
  std::vector<at::Tensor> out;
  cv::Mat m;
  while (rd.read(m)) out.push_back(torch::from_blob(m.data, {m.rows, m.cols, 3}, torch::kUInt8).clone());
  return torch::stack(out);
}
}  // namespace

// Sync-C/D from a video file whose audio track the CLI decodes itself (16 kHz mono, int16 scale).
TEST(CliEvalMedia, SyncFromVideoAudioTrack) {
  EMO_GOLDEN_FIXTURE(fx, "eval/syncnet");
  auto root = scratch("sync");
  fs::create_directories(root / "weights");
  emo::io::write_safetensors((root / "weights" / ev::kSyncWeightsFile).string(), fx.weights());
  const int64_t t = 8;  // 3 SyncNet windows: keeps the test short
  auto bgr = fx.input("frames_bgr_u8").narrow(0, 0, t);
  auto s16 = fx.input("audio_s16").narrow(0, 0, t * 640);
  std::vector<float> pcm(static_cast<size_t>(s16.numel()));
  for (int64_t i = 0; i < s16.numel(); ++i) pcm[i] = s16[i].item<int16_t>() / 32768.0f;
  emo::audio::write_wav_pcm16((root / "speech.wav").string(), pcm, 16000, 1);
  {
    emo::video::VideoWriterOptions vo;
    vo.fps = 25;
    vo.crf = 0;
    vo.audio_path = (root / "speech.wav").string();
    auto rgb = bgr.flip(3).contiguous();
    emo::video::VideoWriter w((root / "pred.mp4").string(), static_cast<int>(rgb.size(2)), static_cast<int>(rgb.size(1)), vo);
    for (int64_t i = 0; i < t; ++i) {
      auto f = rgb[i].contiguous();
      w.write(f.data_ptr<uint8_t>(), static_cast<int>(rgb.size(2)), static_cast<int>(rgb.size(1)));
    }
    w.finish();
  }
  auto r = run_cli("--threads 1 eval --pred " + q(root / "pred.mp4") + " --metrics sync --weights " + q(root / "weights") +
                   " --json " + q(root / "out.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = read_json(root / "out.json");
  ASSERT_TRUE(j["metrics"]["sync_c"]["available"].get<bool>()) << j.dump(2);
  // The library on what the decoders return (AAC is lossy, so not the fixture's own samples).
  auto frames = decode_frames(root / "pred.mp4");
  auto a = emo::audio::decode_audio((root / "pred.mp4").string());
  ASSERT_EQ(a.sample_rate, 16000);
  EXPECT_NEAR(static_cast<double>(a.num_samples()), static_cast<double>(t * 640), 640.0);
  auto audio = ev::pcm_float_to_s16(torch::from_blob(a.planes[0].data(), {a.num_samples()}, torch::kFloat32).clone());
  auto want = ev::SyncNet::from_state_dict(fx.weights()).evaluate(frames.flip(3).contiguous(), audio);
  EXPECT_FLOAT_EQ(static_cast<float>(j["metrics"]["sync_c"]["value"].get<double>()), want.conf);
  EXPECT_FLOAT_EQ(static_cast<float>(j["metrics"]["sync_d"]["value"].get<double>()), want.min_dist);

  // A frame folder takes its audio from --audio.
  fs::create_directories(root / "frames");
  for (int64_t i = 0; i < t; ++i) {
    auto f = frames[i].flip(2).contiguous();
    cv::Mat m(static_cast<int>(f.size(0)), static_cast<int>(f.size(1)), CV_8UC3, f.data_ptr<uint8_t>());
    char name[32];
    std::snprintf(name, sizeof name, "%06d.png", static_cast<int>(i));
    ASSERT_TRUE(cv::imwrite((root / "frames" / name).string(), m));
  }
  auto r2 = run_cli("--threads 1 eval --pred " + q(root / "frames") + " --audio " + q(root / "pred.mp4") +
                    " --metrics sync --weights " + q(root / "weights") + " --json " + q(root / "out2.json"));
  ASSERT_EQ(r2.code, 0) << r2.output;
  auto j2 = read_json(root / "out2.json");
  EXPECT_FLOAT_EQ(static_cast<float>(j2["metrics"]["sync_c"]["value"].get<double>()), want.conf);
}

// F-SIM with the golden stand-in face models (SCRFD + ArcFace ONNX), and its unavailable message without them.
TEST(CliEvalMedia, FsimWithStandInFaceModels) {
  EMO_GOLDEN_FIXTURE(fx, "face/scrfd_decode");
  auto root = scratch("fsim");
  const fs::path golden = fs::absolute(fs::path(fx.dir()).parent_path());
  fs::create_directories(root / "pm/face_analysis/models");
  fs::create_symlink(golden / "scrfd_decode/model.onnx", root / "pm/face_analysis/models" / ev::kFaceDetectorFile);
  fs::create_symlink(golden / "arcface_align_embed/model.onnx", root / "pm/face_analysis/models" / ev::kFaceRecognitionFile);
  auto img = fx.input("image_0").contiguous();  // messi5.jpg, BGR
  cv::Mat photo(static_cast<int>(img.size(0)), static_cast<int>(img.size(1)), CV_8UC3, img.data_ptr());
  cv::Mat mirrored;
  cv::flip(photo, mirrored, 1);
  ASSERT_TRUE(cv::imwrite((root / "portrait.png").string(), photo));
  fs::create_directories(root / "pred");
  ASSERT_TRUE(cv::imwrite((root / "pred/000001.png").string(), photo));     // same identity, same pixels: 1
  ASSERT_TRUE(cv::imwrite((root / "pred/000002.png").string(), mirrored));  // same person, other pixels: < 1

  // Expected: the library's pick (largest face) and embedding on each frame.
  emo::face::FaceOptions fo;
  fo.model_dir = (root / "pm").string();
  emo::face::FaceAnalyzer fa(fo);
  auto embed = [&](const cv::Mat& bgr) {
    auto faces = fa.detect(bgr);
    int pick = -1;
    for (int i = 0; i < static_cast<int>(faces.size()); ++i)
      if (faces[i].has_kps && (pick < 0 || faces[i].area() > faces[pick].area())) pick = i;
    return pick < 0 ? std::vector<float>{} : fa.embed(bgr, faces[pick].kps);
  };
  const auto e_ref = embed(photo), e_mir = embed(mirrored);
  ASSERT_FALSE(e_ref.empty());
  ASSERT_FALSE(e_mir.empty());
  const double want = (1.0 + ev::cosine_similarity(e_ref, e_mir)) / 2;
  ASSERT_LT(want, 1.0 - 1e-6);

  auto r = run_cli("--threads 1 eval --pred " + q(root / "pred") + " --ref-image " + q(root / "portrait.png") +
                   " --metrics fsim --face-models " + q(root / "pm") + " --json " + q(root / "out.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = read_json(root / "out.json");
  ASSERT_TRUE(j["metrics"]["fsim"]["available"].get<bool>()) << j.dump(2);
  EXPECT_NEAR(j["metrics"]["fsim"]["value"].get<double>(), want, 1e-6);

  // Without models: unavailable, naming the files it needs.
  fs::create_directories(root / "empty");
  auto u = run_cli("eval --pred " + q(root / "pred") + " --ref-image " + q(root / "portrait.png") +
                   " --metrics fsim --weights " + q(root / "empty") + " --json " + q(root / "u.json"));
  ASSERT_EQ(u.code, 0) << u.output;
  auto ju = read_json(root / "u.json");
  EXPECT_FALSE(ju["metrics"]["fsim"]["available"].get<bool>());
  const auto why = ju["metrics"]["fsim"]["reason"].get<std::string>();
  EXPECT_NE(why.find(ev::kFaceDetectorFile), std::string::npos) << why;
  EXPECT_NE(why.find(ev::kFaceRecognitionFile), std::string::npos) << why;
}

// --result / --baseline only compare; exit 7 on a regression.
TEST(CliEvalMedia, BaselineCheckExitCodes) {
  auto root = scratch("baseline");
  std::ofstream(root / "result.json") << R"({"metrics": {"ssim": {"available": true, "value": 0.70},
                                           "fid": {"available": true, "value": 40.0}}})";
  std::ofstream(root / "ok.json") << R"({"metrics": {"ssim": {"value": 0.71, "tolerance": 0.02},
                                       "fid": {"value": 38.0, "tolerance": 3.0}}})";
  std::ofstream(root / "bad.json") << R"({"metrics": {"ssim": {"value": 0.75, "tolerance": 0.02}}})";
  auto ok = run_cli("eval --result " + q(root / "result.json") + " --baseline " + q(root / "ok.json"));
  EXPECT_EQ(ok.code, 0) << ok.output;
  auto bad = run_cli("eval --result " + q(root / "result.json") + " --baseline " + q(root / "bad.json"));
  EXPECT_EQ(bad.code, 7) << bad.output;
  EXPECT_NE(bad.output.find("REGRESSED"), std::string::npos) << bad.output;
  auto usage = run_cli("eval --baseline " + q(root / "ok.json"));
  EXPECT_EQ(usage.code, 2) << usage.output;
}

// `emo cut`: time range resampled to 25 fps, crop window scaled from the reference height, resize, audio.
TEST(CliEvalMedia, CutClipRangeCropResizeAudio) {
  auto root = scratch("cut");
  // Source: 2 s at 30 fps, 64x48; frame i is a flat colour with R = 4 i; 2 s of audio.
  std::vector<float> pcm(32000);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 16000.0);
  emo::audio::write_wav_pcm16((root / "tone.wav").string(), pcm, 16000, 1);
  {
    emo::video::VideoWriterOptions vo;
    vo.fps = 30;
    vo.crf = 0;
    vo.audio_path = (root / "tone.wav").string();
    emo::video::VideoWriter w((root / "src.mp4").string(), 64, 48, vo);
    for (int i = 0; i < 60; ++i) w.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar(4 * i, 128, 60)));
    w.finish();
  }
  // Window (x=8, w=32, y=8, h=32) given at height 96 -> (4, 16, 4, 16) in this 48-pixel-high source.
  auto r = run_cli("cut -i " + q(root / "src.mp4") + " -o " + q(root / "clip.mp4") +
                   " --start 0.51 --end 00:01.31 --crop 8,32,8,32 --ref-height 96 --size 32 --crf 0 --first-frame " +
                   q(root / "first.png") + " --audio-out " + q(root / "clip.wav"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("window x=4 y=4 w=16 h=16"), std::string::npos) << r.output;
  auto frames = decode_frames(root / "clip.mp4");
  ASSERT_EQ(frames.size(0), 20);  // 0.8 s at 25 fps
  EXPECT_EQ(frames.size(1), 32);
  EXPECT_EQ(frames.size(2), 32);
  for (int64_t k = 0; k < frames.size(0); ++k) {
    const int src = static_cast<int>(std::floor((0.51 + k / 25.0) * 30));  // last source frame at or before
    const double red = frames[k].select(2, 0).to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(red, 4.0 * src, 2.5) << "output frame " << k;
  }
  EXPECT_FALSE(cv::imread((root / "first.png").string()).empty());
  auto a = emo::audio::decode_audio((root / "clip.wav").string());
  EXPECT_NEAR(static_cast<double>(a.num_samples()), 0.8 * 16000, 2.0);
  EXPECT_TRUE(emo::video::probe((root / "clip.mp4").string()).first("audio") != nullptr);
}

namespace {
struct Shell {
  int code = -1;
  std::string output;
};
Shell shell(const std::string& cmd) {
  Shell r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}
}  // namespace

// scripts/hdtf/prepare.sh reads the HDTF annotation formats (BOM, CRLF, hh:mm:ss, crop_wh, resolution).
TEST(HdtfScripts, PrepareParsesAnnotations) {
  auto root = scratch("hdtf_prepare");
  fs::create_directories(root / "ann");
  fs::create_directories(root / "raw");
  std::ofstream(root / "ann/RD_annotion_time.txt") << "\xEF\xBB\xBFRadio11.mp4 00:30-01:00 01:30-02:30\r\nRadio12.mp4 0:05-0:09\n\n";
  std::ofstream(root / "ann/RD_resolution.txt") << "Radio11.mp4 720\r\n";
  std::ofstream(root / "ann/RD_crop_wh.txt") << "Radio11_0.mp4 100 400 50 420\nRadio11_1.mp4 110 400 60 420\n";
  std::ofstream(root / "raw/Radio11.mp4") << "x";
  auto r = shell("bash '" EMO_SOURCE_DIR "/scripts/hdtf/prepare.sh' --dry-run --subsets RD --emo EMO --annotations " +
                 q(root / "ann") + " --videos " + q(root / "raw") + " --out " + q(root / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Radio11_0.mp4 --start 30.000 --end 60.000 --size 512 --fps 25"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--crop 110\\,400\\,60\\,420 --ref-height 720"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--start 90.000 --end 150.000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not found under"), std::string::npos) << r.output;  // Radio12 was not downloaded
  EXPECT_NE(r.output.find("2 clip(s)"), std::string::npos) << r.output;
}

// scripts/hdtf/run_regression.sh end to end with a stand-in generator (copies the reference clip): the real
// `emo eval` computes SSIM / PSNR and the baseline decides the exit code.
TEST(HdtfScripts, RunRegressionExitCodes) {
  auto root = scratch("hdtf_run");
  fs::create_directories(root / "clips");
  for (int c = 0; c < 2; ++c) {
    const std::string name = "Clip_" + std::to_string(c);
    torch::manual_seed(c);
    auto frames = torch::randint(0, 256, {3, 32, 32, 3}, torch::kUInt8);
    emo::video::VideoWriter w((root / "clips" / (name + ".mp4")).string(), 32, 32);
    for (int64_t i = 0; i < 3; ++i) w.write(frames[i].contiguous().data_ptr<uint8_t>(), 32, 32);
    w.finish();
    std::ofstream(root / "clips" / (name + ".png")) << "x";
    std::ofstream(root / "clips" / (name + ".wav")) << "x";
  }
  // Stand-in `emo`: `generate -i X.png -a X.wav -o OUT` copies X.mp4; anything else runs the real CLI.
  {
    std::ofstream s(root / "emo.sh");
    s << "#!/usr/bin/env bash\nif [[ $1 == generate ]]; then cp \"${3%.png}.mp4\" \"$7\"; exit 0; fi\nexec '"
      << emo::test::cli_path() << "' \"$@\"\n";
  }
  fs::permissions(root / "emo.sh", fs::perms::owner_all);
  std::ofstream(root / "ok.json") << R"({"metrics": {"ssim": {"value": 0.99, "tolerance": 0.01}, "psnr": {"value": 40}}})";
  std::ofstream(root / "strict.json") << R"({"metrics": {"ssim": {"value": 0.99}, "sync_c": {"value": 5}}})";
  const std::string base = "bash '" EMO_SOURCE_DIR "/scripts/hdtf/run_regression.sh' --metrics ssim,psnr --emo " +
                           q(root / "emo.sh") + " --clips " + q(root / "clips") + " --out " + q(root / "run");
  auto ok = shell(base + " --baseline " + q(root / "ok.json"));
  EXPECT_EQ(ok.code, 0) << ok.output;
  auto j = read_json(root / "run/result.json");
  EXPECT_EQ(j["clips"].size(), 2u) << j.dump(2);
  EXPECT_NEAR(j["metrics"]["ssim"]["value"].get<double>(), 1.0, 1e-12);
  // sync_c is required by this baseline but not computed: a regression.
  auto bad = shell(base + " --limit 1 --baseline " + q(root / "strict.json"));
  EXPECT_EQ(bad.code, 7) << bad.output;
  EXPECT_EQ(read_json(root / "run/result.json")["clips"].size(), 1u);
}
