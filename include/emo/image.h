// The one place image files are read (portraits, `emo face`, eval frames): checked, strict decoding.
// docs/limits.md describes the rules; every failure is an InputError (exit 3) naming the file.
#pragma once
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>

namespace emo::image {

// Largest image accepted, in pixels (width x height), checked from the header before the pixels are decoded.
constexpr int64_t kMaxPixels = 64LL * 1000 * 1000;
// Largest image file accepted, in bytes (checked before the file is read).
constexpr int64_t kMaxFileBytes = 256LL * 1024 * 1024;

struct ImageHeader {
  std::string format;   // "jpeg", "png", "webp", "bmp"
  int width = 0;        // as stored (before the EXIF orientation)
  int height = 0;
  int orientation = 1;  // EXIF orientation tag 1..8 (1 when absent or unreadable)
};

// Reads the header of an in-memory file: format, stored size and EXIF orientation (JPEG APP1, PNG eXIf).
// Throws InputError (naming `name`) for unsupported formats, short headers, zero or too many pixels.
ImageHeader read_header(const std::string& bytes, const std::string& name);

// Reads, checks and decodes an image file into CV_8UC3 BGR with its EXIF orientation applied (exactly once:
// every caller sees the same upright pixels). Supported: JPEG (libjpeg; every libjpeg warning such as
// "Premature end of JPEG file" or "Corrupt JPEG data" is an error), PNG (chunk CRCs and IEND checked),
// WebP and BMP (sizes checked against the file). Throws InputError "<path>: <problem>".
cv::Mat load_bgr(const std::string& path);
// Same, converted to RGB.
cv::Mat load_rgb(const std::string& path);
// The same from bytes already in memory (`name` is used in messages).
cv::Mat decode_bgr(const std::string& bytes, const std::string& name);

// Turns a stored image upright according to an EXIF orientation value (1..8; others leave it as is).
cv::Mat apply_orientation(const cv::Mat& img, int orientation);

}  // namespace emo::image
