// Sync-C / Sync-D: syncnet_python SyncNetInstance.evaluate (@6efbb1c) and Wav2Lip's
// evaluation/scores_LSE/SyncNetInstance_calc_scores.py evaluate (@5c90fa9), from decoded frames and samples.
#include <c10/core/InferenceMode.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>

#include "emo/error.h"
#include "emo/eval.h"
#include "eval/eval_weights.h"
#include "eval/syncnet_model.h"

namespace emo::eval {

struct SyncNet::Impl {
  SyncNetModel model;
};

SyncNet::SyncNet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SyncNet::~SyncNet() = default;
SyncNet::SyncNet(SyncNet&&) noexcept = default;
SyncNet& SyncNet::operator=(SyncNet&&) noexcept = default;

SyncNet SyncNet::from_state_dict(const io::StateDict& sd, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  impl->model = SyncNetModel(SyncNetModelConfig{});
  load_metric_weights(*impl->model, sd, source);
  return SyncNet(std::move(impl));
}

SyncNet SyncNet::load(const std::string& path) { return from_state_dict(io::load_state_dict(path), path); }

at::Tensor SyncNet::forward_lip(const at::Tensor& x) const {
  c10::InferenceMode guard;
  return impl_->model->forward_lip(x.to(torch::kFloat32));
}

at::Tensor SyncNet::forward_aud(const at::Tensor& x) const {
  c10::InferenceMode guard;
  return impl_->model->forward_aud(x.to(torch::kFloat32));
}

at::Tensor resize_224_linear(const at::Tensor& frame_in) {
  if (frame_in.dim() != 3 || frame_in.size(2) != 3 || frame_in.scalar_type() != torch::kUInt8)
    throw InputError("resize_224_linear: expected a uint8 [H, W, 3] frame");
  auto frame = frame_in.contiguous();
  cv::Mat src(static_cast<int>(frame.size(0)), static_cast<int>(frame.size(1)), CV_8UC3, frame.data_ptr<uint8_t>());
  auto out = torch::empty({224, 224, 3}, torch::kUInt8);
  cv::Mat dst(224, 224, CV_8UC3, out.data_ptr<uint8_t>());
  cv::resize(src, dst, cv::Size(224, 224));  // cv2.resize(img, (224, 224)): INTER_LINEAR
  return out;
}

namespace {
// scipy.signal.medfilt(x, kernel_size): zero-padded running median.
at::Tensor medfilt(const at::Tensor& x, int k) {
  auto in = x.contiguous();
  const int64_t n = in.numel();
  auto out = torch::empty_like(in);
  const float* a = in.data_ptr<float>();
  float* o = out.data_ptr<float>();
  std::vector<float> w(k);
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < k; ++j) {
      const int64_t idx = i + j - k / 2;
      w[j] = (idx >= 0 && idx < n) ? a[idx] : 0.0f;
    }
    std::nth_element(w.begin(), w.begin() + k / 2, w.end());
    o[i] = w[k / 2];
  }
  return out;
}
}  // namespace

SyncResult SyncNet::evaluate(const at::Tensor& frames_bgr, const at::Tensor& audio_s16,
                             const SyncOptions& opt) const {
  c10::InferenceMode guard;
  if (frames_bgr.dim() != 4 || frames_bgr.size(3) != 3 || frames_bgr.scalar_type() != torch::kUInt8)
    throw InputError("sync: expected uint8 frames [T, H, W, 3] (BGR)");
  if (audio_s16.dim() != 1) throw InputError("sync: expected 1-D audio samples");
  const int64_t num_frames = frames_bgr.size(0);

  // Video: (1, 3, T, 224, 224) float 0..255 in BGR order, no normalisation.
  at::Tensor frames;
  if (opt.variant == SyncVariant::kWav2Lip) {
    std::vector<at::Tensor> resized;
    resized.reserve(num_frames);
    for (int64_t t = 0; t < num_frames; ++t) resized.push_back(resize_224_linear(frames_bgr[t]));
    frames = torch::stack(resized);  // [T, 224, 224, 3]
  } else {
    if (frames_bgr.size(1) != 224 || frames_bgr.size(2) != 224)
      throw InputError("sync (syncnet_python variant): frames must be 224x224 face crops");
    frames = frames_bgr;
  }
  // The reference's imtv is (1, 3, T, 224, 224) float; windows are converted per batch here so long clips
  // stay uint8 in memory (the values are identical: uint8 -> float is exact).
  auto window = [&frames](int64_t v) {
    return frames.narrow(0, v, 5).permute({3, 0, 1, 2}).to(torch::kFloat32);  // [3, 5, 224, 224]
  };

  // Audio: python_speech_features.mfcc on int16-scale samples -> (1, 1, 13, Tm) float32.
  SyncResult r;
  r.mfcc = mfcc(audio_s16, 16000);                                           // [Tm, 13] float64
  auto cct = r.mfcc.t().unsqueeze(0).unsqueeze(0).to(torch::kFloat32);       // [1, 1, 13, Tm]

  const int64_t min_length = std::min<int64_t>(num_frames, audio_s16.numel() / 640);
  const int64_t lastframe = min_length - 5;
  if (lastframe < 1)
    throw InputError("sync: clip too short (" + std::to_string(min_length) + " frames of audio+video, need >= 6)");

  std::vector<at::Tensor> im_feat, cc_feat;
  for (int64_t i = 0; i < lastframe; i += opt.batch_size) {
    const int64_t end = std::min<int64_t>(lastframe, i + opt.batch_size);
    std::vector<at::Tensor> im_batch, cc_batch;
    for (int64_t v = i; v < end; ++v) {
      im_batch.push_back(window(v).unsqueeze(0));         // [1, 3, 5, 224, 224]
      cc_batch.push_back(cct.narrow(3, v * 4, 20));       // [1, 1, 13, 20]
    }
    im_feat.push_back(impl_->model->forward_lip(torch::cat(im_batch, 0)));
    cc_feat.push_back(impl_->model->forward_aud(torch::cat(cc_batch, 0)));
  }
  r.video_emb = torch::cat(im_feat, 0);  // [W, 1024]
  r.audio_emb = torch::cat(cc_feat, 0);  // [W, 1024]

  // calc_pdist: audio features padded with vshift zero rows on both sides.
  const int64_t win = 2 * opt.vshift + 1;
  auto feat2p = torch::constant_pad_nd(r.audio_emb, {0, 0, opt.vshift, opt.vshift});
  std::vector<at::Tensor> dists;
  for (int64_t i = 0; i < r.video_emb.size(0); ++i)
    dists.push_back(torch::pairwise_distance(r.video_emb.narrow(0, i, 1).repeat({win, 1}),
                                             feat2p.narrow(0, i, win)));  // ||x1 - x2 + 1e-6||_2, [win]
  r.dists = torch::stack(dists, 0);                      // [W, win]
  r.mdist = torch::stack(dists, 1).mean(1);              // [win]
  auto mn = torch::min(r.mdist, 0);
  const float minval = std::get<0>(mn).item<float>();
  const int64_t minidx = std::get<1>(mn).item<int64_t>();
  const float median = r.mdist.median().item<float>();
  r.offset = static_cast<int>(opt.vshift - minidx);
  r.conf = median - minval;
  r.min_dist = minval;
  r.framewise_conf = medfilt(median - r.dists.select(1, minidx).contiguous(), 9);
  return r;
}

}  // namespace emo::eval
