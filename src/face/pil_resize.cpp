// PIL Image.resize(size, Image.BILINEAR) for 8-bit images (libImaging/Resample.c): a separable,
// support-scaled triangle filter (antialiasing when shrinking), horizontal pass then vertical pass, 8-bit
// intermediate, fixed-point coefficients with 22 fractional bits. torchvision's Resize((512, 512)) on PIL
// images calls exactly this.
#include <cmath>
#include <vector>

#include "emo/face.h"

namespace emo::face {

namespace {
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, xmax per output pixel
  std::vector<int> k;       // fixed point, ksize per output pixel
};

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

Coeffs precompute(int in_size, float in0, float in1, int out_size) {
  const double support_base = 1.0;
  double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support_base * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(out_size * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> kk(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    int x = 0;
    for (; x < xmax; ++x) {
      double w = bilinear_filter((x + xmin - center + 0.5) * ss);
      kk[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; ++x)
      if (ww != 0.0) kk[x] /= ww;
    for (; x < c.ksize; ++x) kk[x] = 0;
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
    for (x = 0; x < c.ksize; ++x) {
      double v = kk[x] * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int>(v < 0 ? -0.5 + v : 0.5 + v);
    }
  }
  return c;
}

inline unsigned char clip8(int in) {
  if (in >= (1 << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return static_cast<unsigned char>(in >> kPrecisionBits);
}
}  // namespace

cv::Mat pil_resize_bilinear(const cv::Mat& src, int out_w, int out_h) {
  CV_Assert(src.depth() == CV_8U && (src.channels() == 1 || src.channels() == 3) && out_w > 0 && out_h > 0);
  if (src.cols == out_w && src.rows == out_h) return src.clone();
  const int ch = src.channels();
  const int in_w = src.cols, in_h = src.rows;
  Coeffs hc = precompute(in_w, 0.f, static_cast<float>(in_w), out_w);
  Coeffs vc = precompute(in_h, 0.f, static_cast<float>(in_h), out_h);
  const bool need_h = out_w != in_w, need_v = out_h != in_h;
  int ybox_first = vc.bounds[0];
  int ybox_last = vc.bounds[out_h * 2 - 2] + vc.bounds[out_h * 2 - 1];
  cv::Mat cur = src;
  if (need_h) {
    for (int i = 0; i < out_h; ++i) vc.bounds[i * 2] -= ybox_first;
    cv::Mat tmp(ybox_last - ybox_first, out_w, src.type());
    for (int yy = 0; yy < tmp.rows; ++yy) {
      const unsigned char* in = src.ptr<unsigned char>(yy + ybox_first);
      unsigned char* out = tmp.ptr<unsigned char>(yy);
      for (int xx = 0; xx < out_w; ++xx) {
        int xmin = hc.bounds[xx * 2], xmax = hc.bounds[xx * 2 + 1];
        const int* k = &hc.k[static_cast<size_t>(xx) * hc.ksize];
        for (int c = 0; c < ch; ++c) {
          int ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += in[(x + xmin) * ch + c] * k[x];
          out[xx * ch + c] = clip8(ss);
        }
      }
    }
    cur = tmp;
  }
  if (need_v) {
    cv::Mat out(out_h, out_w, src.type());
    for (int yy = 0; yy < out_h; ++yy) {
      int ymin = vc.bounds[yy * 2], ymax = vc.bounds[yy * 2 + 1];
      const int* k = &vc.k[static_cast<size_t>(yy) * vc.ksize];
      unsigned char* o = out.ptr<unsigned char>(yy);
      for (int xx = 0; xx < out_w * ch; ++xx) {
        int ss = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < ymax; ++y) ss += cur.ptr<unsigned char>(y + ymin)[xx] * k[y];
        o[xx] = clip8(ss);
      }
    }
    cur = out;
  }
  return cur.clone();
}

}  // namespace emo::face
