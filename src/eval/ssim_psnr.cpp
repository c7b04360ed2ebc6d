// SSIM / PSNR as computed by scikit-image 0.19.3 (skimage.metrics.structural_similarity,
// peak_signal_noise_ratio) and by common_metrics_on_video_quality calculate_ssim.py / calculate_psnr.py.
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "emo/error.h"
#include "emo/eval.h"

namespace emo::eval {

namespace {

struct Plane {
  int h = 0, w = 0;
  std::vector<double> v;  // row-major
  double& at(int y, int x) { return v[static_cast<size_t>(y) * w + x]; }
  double at(int y, int x) const { return v[static_cast<size_t>(y) * w + x]; }
};

// scipy.ndimage mode 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a
int reflect_index(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// Separable correlation with a centred odd-length kernel along both axes (axis 0 then axis 1, as
// scipy.ndimage applies its 1-D filters), 'reflect' borders, float64.
Plane separable_filter(const Plane& in, const std::vector<double>& k) {
  const int r = static_cast<int>(k.size() / 2);
  Plane tmp{in.h, in.w, std::vector<double>(in.v.size())};
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < in.w; ++x) {
      double s = 0;
      for (int j = -r; j <= r; ++j) s += k[j + r] * in.at(reflect_index(y + j, in.h), x);
      tmp.at(y, x) = s;
    }
  Plane out{in.h, in.w, std::vector<double>(in.v.size())};
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < in.w; ++x) {
      double s = 0;
      for (int j = -r; j <= r; ++j) s += k[j + r] * tmp.at(y, reflect_index(x + j, in.w));
      out.at(y, x) = s;
    }
  return out;
}

Plane multiply(const Plane& a, const Plane& b) {
  Plane o{a.h, a.w, std::vector<double>(a.v.size())};
  for (size_t i = 0; i < a.v.size(); ++i) o.v[i] = a.v[i] * b.v[i];
  return o;
}

// skimage.metrics.structural_similarity for one 2-D channel (float64 of the uint8 values).
double skimage_ssim_2d(const Plane& x, const Plane& y, bool gaussian, double data_range, bool sample_cov) {
  const double K1 = 0.01, K2 = 0.03, sigma = 1.5;
  std::vector<double> k;
  int win_size;
  if (gaussian) {
    // gaussian_filter(sigma=1.5, truncate=3.5): radius int(3.5 * 1.5 + 0.5) = 5; win_size = 11.
    const int radius = static_cast<int>(3.5 * sigma + 0.5);
    win_size = 2 * radius + 1;
    double sum = 0;
    for (int i = -radius; i <= radius; ++i) {
      k.push_back(std::exp(-0.5 / (sigma * sigma) * i * i));
      sum += k.back();
    }
    for (auto& e : k) e /= sum;
  } else {
    win_size = 7;  // uniform_filter(size=7)
    k.assign(win_size, 1.0 / win_size);
  }
  if (x.h < win_size || x.w < win_size)
    throw InputError("ssim: image smaller than the " + std::to_string(win_size) + "-pixel window");
  const double np_ = static_cast<double>(win_size) * win_size;
  const double cov_norm = sample_cov ? np_ / (np_ - 1) : 1.0;
  const auto ux = separable_filter(x, k), uy = separable_filter(y, k);
  const auto uxx = separable_filter(multiply(x, x), k), uyy = separable_filter(multiply(y, y), k);
  const auto uxy = separable_filter(multiply(x, y), k);
  const double C1 = (K1 * data_range) * (K1 * data_range), C2 = (K2 * data_range) * (K2 * data_range);
  const int pad = (win_size - 1) / 2;
  double sum = 0;
  int64_t count = 0;
  for (int r = pad; r < x.h - pad; ++r)
    for (int c = pad; c < x.w - pad; ++c) {
      const size_t i = static_cast<size_t>(r) * x.w + c;
      const double vx = cov_norm * (uxx.v[i] - ux.v[i] * ux.v[i]);
      const double vy = cov_norm * (uyy.v[i] - uy.v[i] * uy.v[i]);
      const double vxy = cov_norm * (uxy.v[i] - ux.v[i] * uy.v[i]);
      const double A1 = 2 * ux.v[i] * uy.v[i] + C1, A2 = 2 * vxy + C2;
      const double B1 = ux.v[i] * ux.v[i] + uy.v[i] * uy.v[i] + C1, B2 = vx + vy + C2;
      sum += (A1 * A2) / (B1 * B2);
      ++count;
    }
  return sum / static_cast<double>(count);
}

// common_metrics ssim(): cv2.getGaussianKernel(11, 1.5) outer product, cv2.filter2D, crop [5:-5, 5:-5].
double cm_ssim_2d(const cv::Mat& img1, const cv::Mat& img2) {
  const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
  cv::Mat kernel = cv::getGaussianKernel(11, 1.5, CV_64F);
  cv::Mat window = kernel * kernel.t();
  auto filt = [&](const cv::Mat& m) {
    cv::Mat o;
    cv::filter2D(m, o, -1, window);  // BORDER_REFLECT_101 default; the border is cropped anyway
    return o(cv::Rect(5, 5, m.cols - 10, m.rows - 10)).clone();
  };
  if (img1.rows <= 10 || img1.cols <= 10) throw InputError("ssim: image smaller than 11 pixels");
  cv::Mat mu1 = filt(img1), mu2 = filt(img2);
  cv::Mat mu1_sq = mu1.mul(mu1), mu2_sq = mu2.mul(mu2), mu1_mu2 = mu1.mul(mu2);
  cv::Mat s1 = filt(img1.mul(img1)) - mu1_sq;
  cv::Mat s2 = filt(img2.mul(img2)) - mu2_sq;
  cv::Mat s12 = filt(img1.mul(img2)) - mu1_mu2;
  double sum = 0;
  for (int r = 0; r < mu1.rows; ++r)
    for (int c = 0; c < mu1.cols; ++c) {
      const double num = (2 * mu1_mu2.at<double>(r, c) + C1) * (2 * s12.at<double>(r, c) + C2);
      const double den = (mu1_sq.at<double>(r, c) + mu2_sq.at<double>(r, c) + C1) *
                         (s1.at<double>(r, c) + s2.at<double>(r, c) + C2);
      sum += num / den;
    }
  return sum / (static_cast<double>(mu1.rows) * mu1.cols);
}

at::Tensor checked_frame(const at::Tensor& t, const char* what) {
  if (t.dim() != 3 || t.size(2) != 3 || t.scalar_type() != torch::kUInt8)
    throw InputError(std::string(what) + ": expected a uint8 [H, W, 3] frame");
  return t.contiguous();
}

void check_pair(const at::Tensor& x, const at::Tensor& y, const char* what) {
  if (x.sizes() != y.sizes()) throw InputError(std::string(what) + ": frames have different sizes");
}

Plane channel_plane(const at::Tensor& hwc, int c) {
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1));
  Plane p{h, w, std::vector<double>(static_cast<size_t>(h) * w)};
  const uint8_t* d = hwc.data_ptr<uint8_t>();
  for (size_t i = 0; i < p.v.size(); ++i) p.v[i] = d[i * 3 + c];
  return p;
}

cv::Mat as_mat(const at::Tensor& hwc_u8) {
  return cv::Mat(static_cast<int>(hwc_u8.size(0)), static_cast<int>(hwc_u8.size(1)), CV_8UC3,
                 const_cast<uint8_t*>(hwc_u8.data_ptr<uint8_t>()));
}

}  // namespace

const char* to_string(SsimVariant v) {
  switch (v) {
    case SsimVariant::kSkimage: return "skimage";
    case SsimVariant::kSkimageGaussian: return "skimage_gaussian";
    case SsimVariant::kSkimageGray: return "skimage_gray";
    case SsimVariant::kCommonMetrics: return "common_metrics";
  }
  return "?";
}

const char* to_string(PsnrVariant v) {
  return v == PsnrVariant::kSkimage ? "skimage" : "common_metrics";
}

double ssim(const at::Tensor& x_in, const at::Tensor& y_in, SsimVariant variant) {
  auto x = checked_frame(x_in, "ssim"), y = checked_frame(y_in, "ssim");
  check_pair(x, y, "ssim");
  switch (variant) {
    case SsimVariant::kSkimage:
    case SsimVariant::kSkimageGaussian: {
      const bool g = variant == SsimVariant::kSkimageGaussian;
      double sum = 0;
      for (int c = 0; c < 3; ++c)
        sum += skimage_ssim_2d(channel_plane(x, c), channel_plane(y, c), g, 255.0, /*sample_cov=*/!g);
      return sum / 3.0;  // mean of the channel SSIMs
    }
    case SsimVariant::kSkimageGray: {
      cv::Mat gx, gy;
      cv::cvtColor(as_mat(x), gx, cv::COLOR_RGB2GRAY);
      cv::cvtColor(as_mat(y), gy, cv::COLOR_RGB2GRAY);
      Plane px{gx.rows, gx.cols, {}}, py{gy.rows, gy.cols, {}};
      px.v.assign(gx.datastart, gx.dataend);
      py.v.assign(gy.datastart, gy.dataend);
      return skimage_ssim_2d(px, py, false, 255.0, true);
    }
    case SsimVariant::kCommonMetrics: {
      // Videos are float32 tensors u8 / 255, converted to float64 by ssim() (astype(np.float64)).
      double sum = 0;
      const int h = static_cast<int>(x.size(0)), w = static_cast<int>(x.size(1));
      for (int c = 0; c < 3; ++c) {
        cv::Mat a(h, w, CV_64F), b(h, w, CV_64F);
        const uint8_t* dx = x.data_ptr<uint8_t>();
        const uint8_t* dy = y.data_ptr<uint8_t>();
        for (int r = 0; r < h; ++r)
          for (int q = 0; q < w; ++q) {
            const size_t i = (static_cast<size_t>(r) * w + q) * 3 + c;
            a.at<double>(r, q) = static_cast<double>(static_cast<float>(dx[i]) / 255.0f);
            b.at<double>(r, q) = static_cast<double>(static_cast<float>(dy[i]) / 255.0f);
          }
        sum += cm_ssim_2d(a, b);
      }
      return sum / 3.0;
    }
  }
  throw InputError("ssim: unknown variant");
}

double psnr(const at::Tensor& x_in, const at::Tensor& y_in, PsnrVariant variant) {
  auto x = checked_frame(x_in, "psnr"), y = checked_frame(y_in, "psnr");
  check_pair(x, y, "psnr");
  const uint8_t* dx = x.data_ptr<uint8_t>();
  const uint8_t* dy = y.data_ptr<uint8_t>();
  const int64_t n = x.numel();
  if (variant == PsnrVariant::kSkimage) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(dx[i]) - static_cast<double>(dy[i]);
      s += d * d;
    }
    const double mse = s / static_cast<double>(n);
    if (mse == 0) return std::numeric_limits<double>::infinity();  // numpy: 255^2 / 0 -> inf
    return 10.0 * std::log10(255.0 * 255.0 / mse);
  }
  // img_psnr: np.mean((img1/1.0 - img2/1.0)**2) on float32 u8/255 values, float32 result.
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = static_cast<float>(dx[i]) / 255.0f - static_cast<float>(dy[i]) / 255.0f;
    s += static_cast<double>(d * d);
  }
  const float mse = static_cast<float>(s / static_cast<double>(n));
  if (mse < 1e-10f) return 100.0;
  return 20.0 * std::log10(1.0 / std::sqrt(static_cast<double>(mse)));
}

}  // namespace emo::eval
