// insightface.utils.face_align (estimate_norm / norm_crop / transform / trans_points2d) with skimage's
// SimilarityTransform.estimate (_umeyama, estimate_scale=True), in double precision.
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "face/face_detail.h"

namespace emo::face::detail {

namespace {
// insightface's arcface_dst is a float32 array: use the float32-rounded values.
const float kArcfaceDst[5][2] = {{38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f},
                                 {41.5493f, 92.3655f}, {70.7299f, 92.2041f}};
}  // namespace

// skimage.transform._geometric._umeyama(src, dst, estimate_scale=True). numpy keeps the inputs' precision
// for the means, the demeaned points, A = dst_demean.T @ src_demean / n, its SVD and the variance; the
// rest (U @ diag(d) @ V, scale, translation) is float64. F = float reproduces float32 keypoints exactly.
template <typename F>
cv::Matx33d umeyama_t(const std::vector<cv::Point_<F>>& src, const std::vector<cv::Point_<F>>& dst) {
  const int n = static_cast<int>(src.size());
  F sm[2] = {0, 0}, dm[2] = {0, 0};
  for (int i = 0; i < n; ++i) {
    sm[0] += src[i].x, sm[1] += src[i].y;
    dm[0] += dst[i].x, dm[1] += dst[i].y;
  }
  for (int k = 0; k < 2; ++k) sm[k] /= static_cast<F>(n), dm[k] /= static_cast<F>(n);
  std::vector<std::array<F, 2>> sd(n), dd(n);
  for (int i = 0; i < n; ++i) {
    sd[i] = {src[i].x - sm[0], src[i].y - sm[1]};
    dd[i] = {dst[i].x - dm[0], dst[i].y - dm[1]};
  }
  F A[2][2];
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      F acc = 0;
      for (int i = 0; i < n; ++i) acc += dd[i][r] * sd[i][c];
      A[r][c] = acc / static_cast<F>(n);
    }
  // src_demean.var(axis=0).sum(): var subtracts the (tiny, nonzero) mean of the demeaned points again.
  F var = 0;
  for (int k = 0; k < 2; ++k) {
    F mean = 0;
    for (int i = 0; i < n; ++i) mean += sd[i][k];
    mean /= static_cast<F>(n);
    F acc = 0;
    for (int i = 0; i < n; ++i) acc += (sd[i][k] - mean) * (sd[i][k] - mean);
    var += acc / static_cast<F>(n);
  }
  const double det = static_cast<double>(A[0][0]) * A[1][1] - static_cast<double>(A[0][1]) * A[1][0];
  cv::Vec2d d(1.0, 1.0);
  if (det < 0) d[1] = -1.0;
  cv::Matx22d Ad(A[0][0], A[0][1], A[1][0], A[1][1]);
  cv::Mat w, u, vt;
  cv::SVD::compute(cv::Mat(Ad), w, u, vt);
  auto rnd = [](double v) { return static_cast<double>(static_cast<F>(v)); };  // SVD result in F precision
  cv::Matx22d U, Vt;
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) U(r, c) = rnd(u.at<double>(r, c)), Vt(r, c) = rnd(vt.at<double>(r, c));
  cv::Vec2d S(rnd(w.at<double>(0)), rnd(w.at<double>(1)));
  const double eps = sizeof(F) == 4 ? 1.1920928955078125e-07 : 2.220446049250313e-16;
  const double tol = S[0] * 2 * eps;  // numpy matrix_rank: S.max() * max(M, N) * eps
  int rank = (S[0] > tol) + (S[1] > tol);
  if (rank == 0) return cv::Matx33d::all(std::nan(""));
  cv::Matx22d R;
  if (rank == 1 && cv::determinant(U) * cv::determinant(Vt) > 0) {
    R = U * Vt;
  } else if (rank == 1) {
    R = U * cv::Matx22d(d[0], 0, 0, -1.0) * Vt;
  } else {
    R = U * cv::Matx22d(d[0], 0, 0, d[1]) * Vt;
  }
  double scale = 1.0 / static_cast<double>(var) * (S[0] * d[0] + S[1] * d[1]);
  cv::Matx33d T = cv::Matx33d::eye();
  for (int r = 0; r < 2; ++r) {
    double t = static_cast<double>(dm[r]) - scale * (R(r, 0) * static_cast<double>(sm[0]) + R(r, 1) * static_cast<double>(sm[1]));
    for (int c = 0; c < 2; ++c) T(r, c) = R(r, c) * scale;
    T(r, 2) = t;
  }
  return T;
}

cv::Matx33d umeyama(const std::vector<cv::Point2d>& src, const std::vector<cv::Point2d>& dst) { return umeyama_t(src, dst); }

cv::Matx23d estimate_norm(const std::array<cv::Point2f, 5>& kps, int image_size) {
  double ratio, diff_x;
  if (image_size % 112 == 0) {
    ratio = image_size / 112.0;
    diff_x = 0.0;
  } else {
    ratio = image_size / 128.0;
    diff_x = 8.0 * ratio;
  }
  std::vector<cv::Point2f> src, dst;
  for (int i = 0; i < 5; ++i) {
    src.emplace_back(kps[i].x, kps[i].y);
    // dst = arcface_dst * ratio; dst[:, 0] += diff_x (a float32 array stays float32)
    float x = kArcfaceDst[i][0] * static_cast<float>(ratio) + static_cast<float>(diff_x);
    float y = kArcfaceDst[i][1] * static_cast<float>(ratio);
    dst.emplace_back(x, y);
  }
  cv::Matx33d T = umeyama_t(src, dst);  // float32 keypoints: numpy computes the statistics in float32
  return cv::Matx23d(T(0, 0), T(0, 1), T(0, 2), T(1, 0), T(1, 1), T(1, 2));
}

cv::Mat norm_crop(const cv::Mat& bgr, const std::array<cv::Point2f, 5>& kps, int image_size, cv::Matx23d* M_out) {
  cv::Matx23d M = estimate_norm(kps, image_size);
  if (M_out) *M_out = M;
  cv::Mat out;
  cv::warpAffine(bgr, out, cv::Mat(M), cv::Size(image_size, image_size), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(0, 0, 0));
  return out;
}

cv::Matx23d landmark_transform(double cx, double cy, int output_size, double scale) {
  // t1 (scale) + t2 (translate -c*s) + t3 (rotation 0) + t4 (translate output_size / 2)
  double half = output_size / 2.0;
  return cv::Matx23d(scale, 0.0, -(cx * scale) + half, 0.0, scale, -(cy * scale) + half);
}

cv::Mat landmark_crop(const cv::Mat& bgr, const cv::Vec4f& box, int input_size, cv::Matx23d* M_out) {
  float w = box[2] - box[0], h = box[3] - box[1];          // float32 as numpy
  float cx = (box[2] + box[0]) / 2.f, cy = (box[3] + box[1]) / 2.f;
  double scale = input_size / (static_cast<double>(std::max(w, h)) * 1.5);
  cv::Matx23d M = landmark_transform(cx, cy, input_size, scale);
  if (M_out) *M_out = M;
  cv::Mat out;
  cv::warpAffine(bgr, out, cv::Mat(M), cv::Size(input_size, input_size), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(0, 0, 0));
  return out;
}

std::vector<cv::Point2f> landmark_decode(const float* raw, int count, int lmk_num, int input_size,
                                         const cv::Matx23d& M) {
  const int dim = count >= 3000 ? 3 : 2;
  const int total = count / dim;
  const int first = lmk_num < total ? total - lmk_num : 0;
  cv::Matx23d IM;
  cv::invertAffineTransform(M, IM);
  const float half = static_cast<float>(input_size / 2);
  std::vector<cv::Point2f> pts;
  for (int i = first; i < total; ++i) {
    float x = (raw[i * dim] + 1.f) * half;
    float y = (raw[i * dim + 1] + 1.f) * half;
    double nx = IM(0, 0) * x + IM(0, 1) * y + IM(0, 2);
    double ny = IM(1, 0) * x + IM(1, 1) * y + IM(1, 2);
    pts.emplace_back(static_cast<float>(nx), static_cast<float>(ny));
  }
  return pts;
}

}  // namespace emo::face::detail
