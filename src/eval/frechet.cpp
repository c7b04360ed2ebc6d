// Frechet distance between Gaussians fitted to feature sets:
//   pytorch_fid.fid_score.calculate_frechet_distance (FID) and the FVD variants of
//   common_metrics_on_video_quality fvd/styleganv/fvd.py and stylegan-v compute_fvd + FeatureStats.
#include <torch/torch.h>

#include <cmath>

#include "emo/error.h"
#include "emo/eval.h"
#include "emo/log.h"

namespace emo::eval {

GaussianStats feature_statistics(const at::Tensor& feats_in, Covariance cov) {
  if (feats_in.dim() != 2 || feats_in.size(0) < 1)
    throw InputError("feature_statistics: expected features [N, D] with N >= 1, got " +
                     std::to_string(feats_in.dim()) + "-d tensor");
  auto x = feats_in.to(torch::kFloat64).contiguous();  // [N, D]
  const int64_t n = x.size(0);
  GaussianStats s;
  if (cov == Covariance::kUnbiased) {
    s.mu = x.mean(0);                             // np.mean(act, axis=0)
    if (n < 2) {
      s.sigma = torch::zeros({x.size(1), x.size(1)}, x.options());
    } else {
      auto xc = x - s.mu;                         // np.cov: (X - mu)^T (X - mu) / (N - 1)
      s.sigma = xc.t().matmul(xc) / static_cast<double>(n - 1);
    }
  } else {
    // FeatureStats: raw sums in float64; mean = sum / N; cov = X^T X / N - mu mu^T.
    s.mu = x.sum(0) / static_cast<double>(n);
    s.sigma = x.t().matmul(x) / static_cast<double>(n) - torch::outer(s.mu, s.mu);
  }
  return s;
}

double trace_sqrtm_product(const at::Tensor& s1, const at::Tensor& s2) {
  // scipy.linalg.sqrtm computes the (complex) Schur form T of A = s1 @ s2 and R = sqrt(T) with
  // diag(R) = sqrt(diag(T)); so tr sqrtm(A) = sum_i sqrt(lambda_i) over the eigenvalues of A (principal
  // branch), of which the callers keep the real part. Eigenvalues of the same product via LAPACK geev.
  auto a = s1.to(torch::kFloat64).matmul(s2.to(torch::kFloat64));  // [D, D]
  auto lambda = at::linalg_eigvals(a);                               // [D] complex128
  return at::real(at::sqrt(lambda)).sum().item<double>();
}

namespace {
bool has_zero_row(const at::Tensor& s) {
  return (s.abs().amax(1) == 0).any().item<bool>();
}
}  // namespace

FrechetResult frechet_distance(const GaussianStats& a, const GaussianStats& b, double eps, EpsBranch policy) {
  auto mu1 = a.mu.to(torch::kFloat64), mu2 = b.mu.to(torch::kFloat64);
  auto s1 = a.sigma.to(torch::kFloat64), s2 = b.sigma.to(torch::kFloat64);
  if (mu1.sizes() != mu2.sizes() || s1.sizes() != s2.sizes() || s1.dim() != 2 || s1.size(0) != mu1.size(0))
    throw InputError("frechet_distance: mean vectors / covariances have different or inconsistent shapes");
  auto diff = mu1 - mu2;
  FrechetResult r;
  // scipy's Schur-based sqrtm fails (all-NaN result) on exactly singular products with coupled zero Schur
  // diagonal entries, typically produced by a constant feature; pytorch-fid then retries with eps * I added.
  // That failure is not portable to detect, so kAuto uses the fixture's rule: an all-zero covariance row.
  bool use_eps = policy == EpsBranch::kAlways ||
                 (policy == EpsBranch::kAuto && (has_zero_row(s1) || has_zero_row(s2)));
  double tr_covmean = 0;
  if (!use_eps) {
    tr_covmean = trace_sqrtm_product(s1, s2);
    if (!std::isfinite(tr_covmean)) use_eps = true;
  }
  if (use_eps) {
    log_warn("fid calculation produces singular product; adding " + std::to_string(eps) +
             " to diagonal of cov estimates");
    auto offset = torch::eye(s1.size(0), s1.options()) * eps;
    tr_covmean = trace_sqrtm_product(s1 + offset, s2 + offset);
    r.eps_branch = true;
  }
  r.distance = diff.dot(diff).item<double>() + s1.trace().item<double>() + s2.trace().item<double>() -
               2.0 * tr_covmean;
  return r;
}

double fvd_from_features(const at::Tensor& feats_gen, const at::Tensor& feats_real, FvdVariant variant) {
  const auto cov = variant == FvdVariant::kCommonMetrics ? Covariance::kUnbiased : Covariance::kBiased;
  auto g = feature_statistics(feats_gen, cov);
  auto r = feature_statistics(feats_real, cov);
  auto diff = g.mu - r.mu;
  const double m = diff.dot(diff).item<double>();
  // common_metrics' frechet_distance returns only m when either set holds a single video.
  if (variant == FvdVariant::kCommonMetrics && (feats_gen.size(0) == 1 || feats_real.size(0) == 1)) return m;
  // m + tr(S1 + S2 - 2 sqrtm(S1 S2)), np.real: no eps fallback, no imaginary check.
  return m + g.sigma.trace().item<double>() + r.sigma.trace().item<double>() -
         2.0 * trace_sqrtm_product(g.sigma, r.sigma);
}

}  // namespace emo::eval
