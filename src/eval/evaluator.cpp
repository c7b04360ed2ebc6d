// `emo eval` driver: streams (prediction, reference) clip pairs through the requested metrics and
// aggregates them like the reference tools (FID / FVD over the whole set, per-frame SSIM / PSNR averaged
// over all frames of all clips, Sync-C / Sync-D averaged over clips as Wav2Lip's calculate_scores_LRS.py,
// F-SIM per clip over frames with a face, averaged over clips).
#include <c10/core/InferenceMode.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "emo/error.h"
#include "emo/eval.h"
#include "emo/image.h"
#include "emo/log.h"
#include "eval/fsim.h"

namespace emo::eval {

namespace fs = std::filesystem;

namespace {
bool wants(const EvalOptions& o, const std::string& m) {
  return std::find(o.metrics.begin(), o.metrics.end(), m) != o.metrics.end();
}

struct Accum {
  MetricResult r;
  double frame_sum = 0;  // per-frame metrics: sum over all frames of all clips
  int64_t frame_count = 0;
  double clip_sum = 0;
  int64_t clip_count = 0;
  void unavailable(const std::string& why) {
    if (r.reason.empty()) r.reason = why;
  }
};
}  // namespace

struct Evaluator::Impl {
  EvalOptions opt;
  std::optional<FidInception> fid;
  std::optional<SyncNet> sync;
  std::optional<I3D> i3d;
  std::unique_ptr<detail::FaceIdentity> face;
  std::optional<std::vector<float>> ref_image_emb;  // from EvalOptions::ref_image
  std::string fid_missing, sync_missing, i3d_missing, face_missing;
  std::vector<at::Tensor> fid_pred, fid_ref, fvd_pred, fvd_ref;
  Accum a_fid, a_fvd, a_sync_c, a_sync_d, a_ssim, a_psnr, a_fsim;
  std::vector<std::string> clips;
  bool any_ref_missing = false;

  // Loads a metric network; on a missing / unloadable file records why the metric is unavailable.
  template <typename T>
  void load(const char* file, std::optional<T>& out, std::string& missing) {
    const fs::path p = fs::path(opt.weights_dir.empty() ? "." : opt.weights_dir) / file;
    if (!fs::exists(p)) {
      missing = "needs weight file " + p.string();
      return;
    }
    try {
      out.emplace(T::load(p.string()));
    } catch (const std::exception& e) {
      missing = std::string("cannot load ") + p.string() + ": " + e.what();
      log_warn(missing);
    }
  }
};

Evaluator::Evaluator(EvalOptions options) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(options);
  for (const auto& name : m.opt.metrics)
    if (name != "fid" && name != "fvd" && name != "sync" && name != "ssim" && name != "psnr" && name != "fsim")
      throw UsageError("emo eval: unknown metric '" + name + "' (fid, fvd, sync, ssim, psnr, fsim)");
  m.a_fid.r.name = "fid";
  m.a_fvd.r.name = "fvd";
  m.a_sync_c.r.name = "sync_c";
  m.a_sync_d.r.name = "sync_d";
  m.a_ssim.r.name = "ssim";
  m.a_psnr.r.name = "psnr";
  m.a_fsim.r.name = "fsim";
  m.a_fsim.r.variant = "arcface_cosine";
  // Variant names travel with the values (numbers are only comparable within one variant).
  m.a_fid.r.variant = "pytorch-fid";
  m.a_fvd.r.variant = m.opt.fvd_variant == FvdVariant::kCommonMetrics ? "common_metrics" : "styleganv";
  m.a_sync_c.r.variant = m.a_sync_d.r.variant = m.opt.sync_variant == SyncVariant::kWav2Lip ? "wav2lip" : "syncnet_python";
  m.a_ssim.r.variant = to_string(m.opt.ssim_variant);
  m.a_psnr.r.variant = to_string(m.opt.psnr_variant);
  if (wants(m.opt, "fid")) m.load(kFidWeightsFile, m.fid, m.fid_missing);
  if (wants(m.opt, "sync")) m.load(kSyncWeightsFile, m.sync, m.sync_missing);
  if (wants(m.opt, "fvd")) m.load(kI3dWeightsFile, m.i3d, m.i3d_missing);
  if (wants(m.opt, "fsim")) {
    m.face = detail::FaceIdentity::open(m.opt.face_models_dir.empty() ? m.opt.weights_dir : m.opt.face_models_dir,
                                        m.face_missing);
    if (m.face && !m.opt.ref_image.empty()) {
      cv::Mat rgb = image::load_rgb(m.opt.ref_image);  // strict; InputError naming the file
      auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
      m.ref_image_emb = m.face->embed_rgb(t);
      if (!m.ref_image_emb) m.face_missing = m.opt.ref_image + ": no face found in the F-SIM reference image";
    }
  }
}

Evaluator::~Evaluator() = default;

void Evaluator::add(const Clip& pred, const Clip* ref) {
  c10::InferenceMode guard;
  auto& m = *impl_;
  const auto& o = m.opt;
  if (!pred.frames_rgb.defined() || pred.frames_rgb.dim() != 4 || pred.frames_rgb.size(3) != 3 ||
      pred.frames_rgb.scalar_type() != torch::kUInt8)
    throw InputError(pred.name + ": expected decoded RGB uint8 frames [T, H, W, 3]");
  m.clips.push_back(pred.name);
  if (!ref) m.any_ref_missing = true;

  // Sync-C / Sync-D (prediction + its own audio track).
  if (wants(o, "sync")) {
    if (!m.sync) {
      m.a_sync_c.unavailable(m.sync_missing);
      m.a_sync_d.unavailable(m.sync_missing);
    } else if (!pred.audio_s16.defined() || pred.audio_s16.numel() == 0) {
      log_warn(pred.name + ": no audio track, Sync-C/D skipped for this clip");
    } else if (pred.audio_rate != 16000) {
      log_warn(pred.name + ": audio must be resampled to 16 kHz for SyncNet; clip skipped");
    } else {
      if (std::abs(pred.fps - 25.0) > 1e-3)
        log_warn(pred.name + ": SyncNet assumes 25 fps (got " + std::to_string(pred.fps) + "); resample first");
      try {
        SyncOptions so;
        so.variant = o.sync_variant;
        auto r = m.sync->evaluate(pred.frames_rgb.flip(3), pred.audio_s16, so);  // RGB -> BGR
        m.a_sync_c.r.per_clip.emplace_back(pred.name, r.conf);
        m.a_sync_d.r.per_clip.emplace_back(pred.name, r.min_dist);
        m.a_sync_c.clip_sum += r.conf;
        m.a_sync_d.clip_sum += r.min_dist;
        ++m.a_sync_c.clip_count;
        ++m.a_sync_d.clip_count;
      } catch (const InputError& e) {
        log_warn(pred.name + ": Sync-C/D skipped: " + e.what());
      }
    }
  }

  // F-SIM: identity of the reference portrait (--ref-image, else the reference video's first frame).
  if (wants(o, "fsim")) {
    std::optional<std::vector<float>> id;
    if (m.face && !o.ref_image.empty()) {
      id = m.ref_image_emb;
    } else if (m.face && ref && ref->frames_rgb.defined() && ref->frames_rgb.size(0) > 0) {
      id = m.face->embed_rgb(ref->frames_rgb[0]);
      if (!id) log_warn(pred.name + ": no face in the reference's first frame, F-SIM skipped for this clip");
    }
    if (!m.face) {
      m.a_fsim.unavailable(m.face_missing);
    } else if (id) {
      std::vector<double> sims;
      for (int64_t i = 0; i < pred.frames_rgb.size(0); ++i)
        if (auto e = m.face->embed_rgb(pred.frames_rgb[i])) sims.push_back(cosine_similarity(*id, *e));
      if (sims.empty()) {
        log_warn(pred.name + ": no face found in any frame, F-SIM skipped for this clip");
      } else {
        const double v = fsim_clip_mean(sims);
        m.a_fsim.r.per_clip.emplace_back(pred.name, v);
        m.a_fsim.clip_sum += v;
        ++m.a_fsim.clip_count;
      }
    }
  }

  // Reference-based metrics.
  const bool same_geometry = ref && ref->frames_rgb.defined() && ref->frames_rgb.dim() == 4 &&
                             ref->frames_rgb.sizes().slice(1) == pred.frames_rgb.sizes().slice(1);
  if (ref && !same_geometry && (wants(o, "ssim") || wants(o, "psnr")))
    log_warn(pred.name + ": reference frame size differs; SSIM/PSNR skipped for this clip");
  if (same_geometry) {
    const int64_t t = std::min(pred.frames_rgb.size(0), ref->frames_rgb.size(0));
    if (pred.frames_rgb.size(0) != ref->frames_rgb.size(0))
      log_warn(pred.name + ": prediction and reference differ in length; comparing the first " +
               std::to_string(t) + " frames");
    for (auto* a : {&m.a_ssim, &m.a_psnr}) {
      const bool is_ssim = a == &m.a_ssim;
      if (!wants(o, is_ssim ? "ssim" : "psnr")) continue;
      double s = 0;
      for (int64_t i = 0; i < t; ++i)
        s += is_ssim ? ssim(pred.frames_rgb[i], ref->frames_rgb[i], o.ssim_variant)
                     : psnr(pred.frames_rgb[i], ref->frames_rgb[i], o.psnr_variant);
      a->frame_sum += s;
      a->frame_count += t;
      if (t > 0) a->r.per_clip.emplace_back(pred.name, s / static_cast<double>(t));
    }
  }
  if (ref && wants(o, "fid")) {
    if (m.fid) {
      m.fid_pred.push_back(m.fid->features(pred.frames_rgb, o.fid_batch_size).to(torch::kFloat64));
      m.fid_ref.push_back(m.fid->features(ref->frames_rgb, o.fid_batch_size).to(torch::kFloat64));
    } else {
      m.a_fid.unavailable(m.fid_missing);
    }
  }
  if (ref && wants(o, "fvd")) {
    if (m.i3d) {
      const int64_t n = std::min<int64_t>({o.fvd_frames, pred.frames_rgb.size(0), ref->frames_rgb.size(0)});
      if (n < 10) {
        log_warn(pred.name + ": fewer than 10 frames, FVD skipped for this clip");
      } else {
        m.fvd_pred.push_back(m.i3d->features_common_metrics(pred.frames_rgb.narrow(0, 0, n).unsqueeze(0)));
        m.fvd_ref.push_back(m.i3d->features_common_metrics(ref->frames_rgb.narrow(0, 0, n).unsqueeze(0)));
      }
    } else {
      m.a_fvd.unavailable(m.i3d_missing);
    }
  }
}

EvalReport Evaluator::finish() {
  auto& m = *impl_;
  const auto& o = m.opt;
  EvalReport rep;
  rep.clips = m.clips;
  auto close_frames = [&](Accum& a, const char* needs) {
    if (a.frame_count > 0) {
      a.r.available = true;
      a.r.value = a.frame_sum / static_cast<double>(a.frame_count);
    } else {
      a.unavailable(needs);
    }
  };
  auto close_clips = [&](Accum& a) {
    if (a.clip_count > 0) {
      a.r.available = true;
      a.r.value = a.clip_sum / static_cast<double>(a.clip_count);
    } else {
      a.unavailable("no clip with 16 kHz audio and at least 6 frames");
    }
  };
  if (wants(o, "fid")) {
    if (m.fid && !m.fid_pred.empty()) {
      auto p = torch::cat(m.fid_pred, 0), r = torch::cat(m.fid_ref, 0);
      if (p.size(0) >= 2 && r.size(0) >= 2) {
        m.a_fid.r.available = true;
        m.a_fid.r.value = frechet_distance(feature_statistics(p), feature_statistics(r)).distance;
      } else {
        m.a_fid.unavailable("needs at least 2 frames per set");
      }
    } else {
      m.a_fid.unavailable(m.fid ? "needs reference videos (--ref)" : m.fid_missing);
    }
    rep.metrics.push_back(m.a_fid.r);
  }
  if (wants(o, "fvd")) {
    if (m.i3d && !m.fvd_pred.empty()) {
      m.a_fvd.r.available = true;
      m.a_fvd.r.value = fvd_from_features(torch::cat(m.fvd_pred, 0), torch::cat(m.fvd_ref, 0), o.fvd_variant);
    } else {
      m.a_fvd.unavailable(m.i3d ? "needs reference videos (--ref) of at least 10 frames" : m.i3d_missing);
    }
    rep.metrics.push_back(m.a_fvd.r);
  }
  if (wants(o, "sync")) {
    close_clips(m.a_sync_c);
    close_clips(m.a_sync_d);
    rep.metrics.push_back(m.a_sync_c.r);
    rep.metrics.push_back(m.a_sync_d.r);
  }
  if (wants(o, "fsim")) {
    if (m.a_fsim.clip_count > 0) {
      m.a_fsim.r.available = true;
      m.a_fsim.r.value = m.a_fsim.clip_sum / static_cast<double>(m.a_fsim.clip_count);
    } else {
      m.a_fsim.unavailable(!m.face_missing.empty()
                               ? m.face_missing
                               : "no face found (needs --ref-image or reference videos whose first frame shows a face)");
    }
    rep.metrics.push_back(m.a_fsim.r);
  }
  if (wants(o, "ssim")) {
    close_frames(m.a_ssim, "needs reference videos (--ref) with the same frame size");
    rep.metrics.push_back(m.a_ssim.r);
  }
  if (wants(o, "psnr")) {
    close_frames(m.a_psnr, "needs reference videos (--ref) with the same frame size");
    rep.metrics.push_back(m.a_psnr.r);
  }
  return rep;
}

const MetricResult* EvalReport::find(const std::string& name) const {
  for (const auto& m : metrics)
    if (m.name == name) return &m;
  return nullptr;
}

std::string EvalReport::to_json() const {
  nlohmann::json j;
  j["clips"] = clips;
  nlohmann::json ms = nlohmann::json::object();
  for (const auto& m : metrics) {
    nlohmann::json e;
    e["available"] = m.available;
    e["variant"] = m.variant;
    if (m.available) {
      if (std::isfinite(m.value))
        e["value"] = m.value;
      else
        e["value"] = m.value > 0 ? "inf" : "nan";
      nlohmann::json pc = nlohmann::json::object();
      for (const auto& [clip, v] : m.per_clip) pc[clip] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json("inf");
      if (!m.per_clip.empty()) e["per_clip"] = pc;
    } else {
      e["reason"] = m.reason;
    }
    ms[m.name] = e;
  }
  j["metrics"] = ms;
  return j.dump(2);
}

}  // namespace emo::eval
