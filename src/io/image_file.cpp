// emo::image: the one place image files are read. The header is parsed first (format, size, EXIF orientation)
// so the pixel limit is enforced before any decoding; JPEG is decoded with libjpeg directly so that its
// warnings ("Premature end of JPEG file", "Corrupt JPEG data: ...") are errors — cv::imread only prints them
// and returns a half-grey picture; PNG chunk CRCs and the IEND chunk are checked before OpenCV decodes it;
// WebP and BMP sizes are checked against the file. The EXIF orientation is applied here, once.
#include "emo/image.h"

#include <jerror.h>
#include <jpeglib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "emo/error.h"

namespace fs = std::filesystem;

namespace emo::image {

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& what) { throw InputError(name + ": " + what); }

uint32_t be32(const unsigned char* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t le32(const unsigned char* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// EXIF orientation from a TIFF structure ("II*\0" / "MM\0*"): IFD0 tag 0x0112. 1 when absent or malformed
// (metadata damage is not a reason to refuse the pixels).
int exif_orientation(const unsigned char* t, size_t n) {
  if (n < 8) return 1;
  const bool le = t[0] == 'I' && t[1] == 'I';
  if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
  auto u16 = [&](size_t o) { return le ? le16(t + o) : be16(t + o); };
  auto u32 = [&](size_t o) { return le ? le32(t + o) : be32(t + o); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) return 1;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {  // SHORT
      const int v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

// ---- JPEG (libjpeg) --------------------------------------------------------------------------------------

struct JpegErr {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
};

void jpeg_fail(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg calls this with level -1 for warnings (corrupt or truncated data: it then makes up the rest of the
// picture) and >= 0 for trace messages. Warnings about metadata only are tolerated; every other one is fatal.
void jpeg_message(j_common_ptr c, int level) {
  if (level >= 0) return;
  const int code = c->err->msg_code;
  if (code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC || code == JWRN_ADOBE_XFORM) return;
  jpeg_fail(c);
}

struct JpegResult {
  cv::Mat bgr;
  int orientation = 1;
};

// Decodes with every warning fatal. `header_only`: stops after the header (size + orientation); so does an
// image above `max_pixels` (the caller refuses it). Returns libjpeg's message on failure, "" on success.
// No object with a destructor lives in this frame between setjmp and a longjmp; the pixels go to `*out`.
std::string jpeg_decode(const std::string& bytes, bool header_only, int64_t max_pixels, int* w, int* h,
                        int* orientation, cv::Mat* out) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  JpegErr err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  cv::Mat* target = out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return err.message[0] ? err.message : "corrupt JPEG data";
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  *w = static_cast<int>(cinfo.image_width);
  *h = static_cast<int>(cinfo.image_height);
  *orientation = 1;
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      *orientation = exif_orientation(m->data + 6, m->data_length - 6);
      break;
    }
  if (header_only || static_cast<int64_t>(*w) * *h > max_pixels || *w <= 0 || *h <= 0) {
    jpeg_destroy_decompress(&cinfo);
    return "";
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
  jpeg_start_decompress(&cinfo);
  target->create(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width), cmyk ? CV_8UC4 : CV_8UC3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = target->ptr<unsigned char>(static_cast<int>(cinfo.output_scanline));
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);  // reads up to EOI: a missing end is a "Premature end" warning, i.e. an error
  jpeg_destroy_decompress(&cinfo);
  return "";
}

// ---- PNG -------------------------------------------------------------------------------------------------

uint32_t crc32_png(const unsigned char* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

// Walks every chunk: lengths inside the file, CRCs right, IHDR first, at least one IDAT, IEND present.
ImageHeader png_check(const std::string& bytes, const std::string& name) {
  const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  ImageHeader h;
  h.format = "png";
  size_t pos = 8;
  bool ihdr = false, idat = false, iend = false;
  while (pos < n) {
    if (pos + 12 > n) bad(name, "truncated PNG (chunk header cut off at byte " + std::to_string(pos) + ")");
    const uint32_t len = be32(d + pos);
    const std::string type(reinterpret_cast<const char*>(d + pos + 4), 4);
    if (len > 0x7fffffffu || pos + 12 + static_cast<size_t>(len) > n)
      bad(name, "truncated PNG (chunk " + type + " at byte " + std::to_string(pos) + " runs past the end of the file)");
    if (crc32_png(d + pos + 4, static_cast<size_t>(len) + 4) != be32(d + pos + 8 + len))
      bad(name, "corrupt PNG (bad CRC in chunk " + type + " at byte " + std::to_string(pos) + ")");
    if (!ihdr && type != "IHDR") bad(name, "not a valid PNG (the first chunk is not IHDR)");
    if (type == "IHDR") {
      if (len < 13) bad(name, "not a valid PNG (short IHDR)");
      h.width = static_cast<int>(std::min<uint32_t>(be32(d + pos + 8), 0x7fffffff));
      h.height = static_cast<int>(std::min<uint32_t>(be32(d + pos + 12), 0x7fffffff));
      ihdr = true;
    }
    if (type == "IDAT") idat = true;
    if (type == "eXIf") h.orientation = exif_orientation(d + pos + 8, len);
    pos += 12 + static_cast<size_t>(len);
    if (type == "IEND") {
      iend = true;
      break;
    }
  }
  if (!ihdr) bad(name, "not a valid PNG (no IHDR chunk)");
  // The size limit is reported before truncation: a header announcing 100 Mpx is refused for that.
  if (static_cast<int64_t>(h.width) * h.height > kMaxPixels) return h;
  if (!iend) bad(name, "truncated PNG (no IEND chunk: the file was cut short)");
  if (!idat) bad(name, "corrupt PNG (no image data)");
  return h;
}

// ---- WebP / BMP headers ----------------------------------------------------------------------------------

ImageHeader webp_header(const std::string& bytes, const std::string& name) {
  const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  ImageHeader h;
  h.format = "webp";
  const size_t riff = static_cast<size_t>(le32(d + 4)) + 8;
  if (riff > n) bad(name, "truncated WebP (RIFF size " + std::to_string(riff) + " bytes, file " + std::to_string(n) + ")");
  if (n < 30) bad(name, "truncated WebP header");
  const std::string chunk(reinterpret_cast<const char*>(d + 12), 4);
  const unsigned char* c = d + 20;
  if (chunk == "VP8 ") {
    if (c[3] != 0x9d || c[4] != 0x01 || c[5] != 0x2a) bad(name, "not a valid WebP (VP8 start code missing)");
    h.width = le16(c + 6) & 0x3fff;
    h.height = le16(c + 8) & 0x3fff;
  } else if (chunk == "VP8L") {
    if (c[0] != 0x2f) bad(name, "not a valid WebP (VP8L signature missing)");
    const uint32_t b = le32(c + 1);
    h.width = static_cast<int>((b & 0x3fff) + 1);
    h.height = static_cast<int>(((b >> 14) & 0x3fff) + 1);
  } else if (chunk == "VP8X") {
    h.width = static_cast<int>((uint32_t(c[4]) | (uint32_t(c[5]) << 8) | (uint32_t(c[6]) << 16)) + 1);
    h.height = static_cast<int>((uint32_t(c[7]) | (uint32_t(c[8]) << 8) | (uint32_t(c[9]) << 16)) + 1);
  } else {
    bad(name, "not a valid WebP (unknown chunk '" + chunk + "')");
  }
  return h;
}

ImageHeader bmp_header(const std::string& bytes, const std::string& name) {
  const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  if (n < 30) bad(name, "truncated BMP header");
  ImageHeader h;
  h.format = "bmp";
  const uint32_t off = le32(d + 10);
  const uint32_t dib = le32(d + 14);
  if (dib < 12 || 14 + static_cast<size_t>(dib) > n) bad(name, "truncated BMP header");
  int64_t w, hh;
  int bpp;
  uint32_t compression = 0;
  if (dib == 12) {
    w = le16(d + 18);
    hh = le16(d + 20);
    bpp = le16(d + 24);
  } else {
    w = static_cast<int32_t>(le32(d + 18));
    hh = static_cast<int32_t>(le32(d + 22));
    bpp = le16(d + 28);
    if (n >= 34) compression = le32(d + 30);
  }
  if (hh < 0) hh = -hh;
  if (w <= 0 || hh <= 0 || w > 0x7fffffff || hh > 0x7fffffff) bad(name, "not a valid BMP (size " + std::to_string(w) + "x" + std::to_string(hh) + ")");
  h.width = static_cast<int>(w);
  h.height = static_cast<int>(hh);
  if (compression == 0 /*BI_RGB*/ && bpp > 0 && static_cast<int64_t>(w) * hh <= kMaxPixels) {
    const int64_t stride = ((w * bpp + 31) / 32) * 4;
    if (static_cast<int64_t>(off) + stride * hh > static_cast<int64_t>(n))
      bad(name, "truncated BMP (pixel data needs " + std::to_string(off + stride * hh) + " bytes, the file has " +
                    std::to_string(n) + ")");
  }
  return h;
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) bad(path, "no such image file");
  if (fs::is_directory(path, ec)) bad(path, "is a directory, expected an image file");
  const auto size = fs::file_size(path, ec);
  if (ec) bad(path, "cannot read the image (" + ec.message() + ")");
  if (static_cast<int64_t>(size) > kMaxFileBytes)
    bad(path, "image file is " + std::to_string(size >> 20) + " MiB, above the limit of " +
                  std::to_string(kMaxFileBytes >> 20) + " MiB");
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, std::string("cannot open the image (") + std::strerror(errno) + ")");
  std::string bytes(static_cast<size_t>(size), '\0');
  f.read(bytes.data(), static_cast<std::streamsize>(size));
  if (f.gcount() != static_cast<std::streamsize>(size)) bad(path, "cannot read the image (short read)");
  return bytes;
}

}  // namespace

ImageHeader read_header(const std::string& bytes, const std::string& name) {
  const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  if (n == 0) bad(name, "empty image file");
  ImageHeader h;
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) {
    h.format = "jpeg";
    std::string e = jpeg_decode(bytes, true, kMaxPixels, &h.width, &h.height, &h.orientation, nullptr);
    if (!e.empty()) bad(name, "corrupt or truncated JPEG (" + e + ")");
  } else if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
    h = png_check(bytes, name);
  } else if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) {
    h = webp_header(bytes, name);
  } else if (n >= 2 && d[0] == 'B' && d[1] == 'M') {
    h = bmp_header(bytes, name);
  } else {
    bad(name, "not a supported image (expected JPEG, PNG, WebP or BMP)");
  }
  if (h.width <= 0 || h.height <= 0)
    bad(name, "invalid image size " + std::to_string(h.width) + "x" + std::to_string(h.height));
  const int64_t px = static_cast<int64_t>(h.width) * h.height;
  if (px > kMaxPixels)
    bad(name, "image is " + std::to_string(h.width) + "x" + std::to_string(h.height) + " (" +
                  std::to_string(px / 1000000) + " Mpx), above the limit of " + std::to_string(kMaxPixels / 1000000) +
                  " Mpx");
  return h;
}

cv::Mat apply_orientation(const cv::Mat& img, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(img, out, 1); break;                         // mirrored
    case 3: cv::rotate(img, out, cv::ROTATE_180); break;
    case 4: cv::flip(img, out, 0); break;                         // mirrored + 180
    case 5: cv::transpose(img, out); break;                       // mirrored + 270 CW
    case 6: cv::rotate(img, out, cv::ROTATE_90_CLOCKWISE); break;
    case 7: cv::transpose(img, out); cv::rotate(out, out, cv::ROTATE_180); break;  // mirrored + 90 CW
    case 8: cv::rotate(img, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: out = img; break;
  }
  return out;
}

cv::Mat decode_bgr(const std::string& bytes, const std::string& name) {
  const ImageHeader h = read_header(bytes, name);  // format, size limit, orientation: before any pixel is decoded
  cv::Mat bgr;
  if (h.format == "jpeg") {
    int w = 0, hh = 0, orient = 1;
    cv::Mat raw;
    std::string e = jpeg_decode(bytes, false, kMaxPixels, &w, &hh, &orient, &raw);
    if (!e.empty()) bad(name, "corrupt or truncated JPEG (" + e + ")");
    if (raw.empty()) bad(name, "cannot decode the JPEG");
    if (raw.channels() == 4) {  // CMYK / YCCK, stored inverted (Adobe): B = Y*K, G = M*K, R = C*K
      bgr.create(raw.rows, raw.cols, CV_8UC3);
      for (int y = 0; y < raw.rows; ++y) {
        const auto* s = raw.ptr<unsigned char>(y);
        auto* o = bgr.ptr<unsigned char>(y);
        for (int x = 0; x < raw.cols; ++x, s += 4, o += 3) {
          o[0] = static_cast<unsigned char>(s[2] * s[3] / 255);
          o[1] = static_cast<unsigned char>(s[1] * s[3] / 255);
          o[2] = static_cast<unsigned char>(s[0] * s[3] / 255);
        }
      }
    } else {
      bgr = raw;
    }
  } else {
    std::vector<unsigned char> buf(bytes.begin(), bytes.end());
    bgr = cv::imdecode(buf, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
    if (bgr.empty()) bad(name, "corrupt " + h.format + " image (cannot decode the pixels)");
  }
  if (bgr.cols != h.width || bgr.rows != h.height)
    bad(name, "decoded size " + std::to_string(bgr.cols) + "x" + std::to_string(bgr.rows) + " differs from the header's " +
                  std::to_string(h.width) + "x" + std::to_string(h.height));
  return apply_orientation(bgr, h.orientation);
}

cv::Mat load_bgr(const std::string& path) { return decode_bgr(read_file(path), path); }

cv::Mat load_rgb(const std::string& path) {
  cv::Mat bgr = load_bgr(path), rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace emo::image
