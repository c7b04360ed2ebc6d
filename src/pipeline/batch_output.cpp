// --resume: is an output already complete? The sidecar's recorded frame count must match what probing the
// video finds. Everything about "complete" lives in check_output() and default_frame_probe().
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "emo/batch.h"

#if __has_include("emo/video.h")
#include "emo/video.h"
#define EMO_BATCH_HAVE_VIDEO_PROBE 1
#else
#define EMO_BATCH_HAVE_VIDEO_PROBE 0
#endif

namespace fs = std::filesystem;

namespace emo::batch {

std::string sidecar_path(const std::string& output) { return output + ".json"; }

namespace {

#if !EMO_BATCH_HAVE_VIDEO_PROBE
uint64_t be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// MP4/MOV: the top-level boxes must tile the file exactly and include moov (a truncated file breaks the chain).
void check_mp4_structure(std::ifstream& f, uint64_t size, const std::string& path) {
  uint64_t pos = 0;
  bool moov = false;
  while (pos < size) {
    unsigned char h[16];
    if (size - pos < 8) throw InputError(path + ": truncated MP4 (partial box header at byte " + std::to_string(pos) + ")");
    f.seekg(static_cast<std::streamoff>(pos));
    f.read(reinterpret_cast<char*>(h), 8);
    if (!f) throw InputError(path + ": cannot read");
    uint64_t box = be(h, 4);
    std::string type(reinterpret_cast<char*>(h + 4), 4);
    if (type == "moov") moov = true;
    if (box == 1) {
      if (size - pos < 16) throw InputError(path + ": truncated MP4");
      f.read(reinterpret_cast<char*>(h + 8), 8);
      box = be(h + 8, 8);
      if (box < 16) throw InputError(path + ": corrupt MP4 box '" + type + "'");
    } else if (box == 0) {
      box = size - pos;  // extends to the end of the file
    } else if (box < 8) {
      throw InputError(path + ": corrupt MP4 box '" + type + "'");
    }
    if (box > size - pos)
      throw InputError(path + ": truncated MP4 (box '" + type + "' ends past the end of the file)");
    pos += box;
  }
  if (!moov) throw InputError(path + ": incomplete MP4 (no moov box)");
}

// Matroska: EBML magic, then a Segment whose declared size (when known) must end exactly at the end of file.
bool read_vint(std::ifstream& f, uint64_t& v, int& len, bool keep_marker) {
  int c = f.get();
  if (c == EOF || c == 0) return false;
  len = 1;
  while (!(c & (0x80 >> (len - 1)))) ++len;
  v = keep_marker ? static_cast<uint64_t>(c) : static_cast<uint64_t>(c & (0xFF >> len));
  for (int i = 1; i < len; ++i) {
    int b = f.get();
    if (b == EOF) return false;
    v = (v << 8) | static_cast<uint64_t>(b);
  }
  return true;
}

void check_mkv_structure(std::ifstream& f, uint64_t size, const std::string& path) {
  uint64_t id, sz;
  int il, sl;
  f.seekg(0);
  if (!read_vint(f, id, il, true) || id != 0x1A45DFA3 || !read_vint(f, sz, sl, false))
    throw InputError(path + ": not a Matroska file (no EBML header)");
  uint64_t pos = static_cast<uint64_t>(il + sl) + sz;
  if (pos >= size) throw InputError(path + ": truncated Matroska file");
  f.seekg(static_cast<std::streamoff>(pos));
  if (!read_vint(f, id, il, true) || id != 0x18538067 || !read_vint(f, sz, sl, false))
    throw InputError(path + ": truncated Matroska file (no Segment)");
  bool unknown = sz == ((uint64_t{1} << (7 * sl)) - 1);
  if (!unknown && pos + il + sl + sz != size)
    throw InputError(path + ": truncated Matroska file (Segment size does not match the file)");
}
#endif

}  // namespace

std::optional<int64_t> default_frame_probe(const std::string& path) {
#if EMO_BATCH_HAVE_VIDEO_PROBE
  auto info = emo::video::probe(path, /*count_packets=*/true);
  const auto* v = info.first("video");
  if (!v) throw InputError(path + ": no video stream");
  if (v->frames < 0) return std::nullopt;
  return v->frames;
#else
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot open");
  f.seekg(0, std::ios::end);
  uint64_t size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  std::array<unsigned char, 12> head{};
  f.read(reinterpret_cast<char*>(head.data()), head.size());
  if (!f) throw InputError(path + ": too short to be a video");
  if (head[0] == 0x1A && head[1] == 0x45 && head[2] == 0xDF && head[3] == 0xA3) {
    f.clear();
    check_mkv_structure(f, size, path);
  } else {
    f.clear();
    check_mp4_structure(f, size, path);
  }
  return std::nullopt;
#endif
}

OutputCheck check_output(const std::string& output, const FrameProbe& probe) {
  OutputCheck r;
  std::error_code ec;
  if (!fs::exists(output, ec)) {
    r.reason = "no output yet";
    return r;
  }
  if (!fs::is_regular_file(output, ec) || fs::file_size(output, ec) == 0 || ec) {
    r.reason = "output is empty or not a regular file";
    return r;
  }
  std::string side = sidecar_path(output);
  std::ifstream sf(side);
  if (!sf) {
    r.reason = "no sidecar " + side;
    return r;
  }
  int64_t recorded = -1;
  try {
    nlohmann::json j = nlohmann::json::parse(sf);
    if (j.is_object() && j.contains("frames") && j["frames"].is_number_integer()) recorded = j["frames"].get<int64_t>();
  } catch (const std::exception&) {
    r.reason = "sidecar " + side + " is not valid JSON";
    return r;
  }
  if (recorded <= 0) {
    r.reason = "sidecar " + side + " records no frame count";
    return r;
  }
  std::optional<int64_t> counted;
  try {
    counted = probe ? probe(output) : default_frame_probe(output);
  } catch (const std::exception& e) {
    r.reason = std::string("output does not probe as a complete video: ") + e.what();
    return r;
  }
  if (counted && *counted != recorded) {
    r.reason = "output has " + std::to_string(*counted) + " frames, its sidecar records " + std::to_string(recorded);
    return r;
  }
  r.complete = true;
  r.frames = recorded;
  return r;
}

}  // namespace emo::batch
