// Video output (H.264 yuv420p + AAC in MP4/MKV, streamed, written atomically), video reading (any container
// -> RGB uint8 frames) and container probing, all through libav*. Errors are emo::InputError (an input file
// is missing/unreadable/has no usable stream) or emo::OutputError (the output cannot be written), with the
// file name and FFmpeg's error text in the message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cv {
class Mat;
}

namespace emo::video {

struct VideoWriterOptions {
  // Frame rate. Converted to an exact rational (25 -> 25/1, 29.97 -> 2997/100).
  double fps = 25.0;
  // x264 constant rate factor (0 = lossless, 51 = worst); mapped to a quantiser for the mpeg4 fallback.
  int crf = 18;
  std::string preset = "medium";  // x264 preset; ignored by other encoders
  int threads = 0;                // encoder threads; 0 = automatic
  // Empty: libx264, else any other H.264 encoder, else mpeg4 (with a warning). A name forces that encoder
  // (e.g. "mpeg4"), without fallback.
  std::string video_encoder;

  // Audio track: decoded from this file (any container/codec libav reads), re-encoded to AAC and trimmed or
  // padded with silence to exactly frames / fps seconds. Empty: no audio track.
  std::string audio_path;
  int audio_stream = -1;        // stream index in audio_path; -1 = the best audio stream
  int64_t audio_bitrate = 128000;

  // Container-level tags (e.g. {"comment", "<generation parameters as JSON>"}). MP4 keeps arbitrary keys.
  std::vector<std::pair<std::string, std::string>> metadata;

  // "mp4" or "matroska"; empty = from the output extension (.mkv -> matroska, otherwise mp4).
  std::string container;
};

// Streams RGB frames into an H.264 (yuv420p, BT.709, limited range) file with an optional AAC track.
// Memory does not grow with the number of frames. The file is written under a temporary name beside `path`
// and renamed onto `path` by finish(); if finish() is not reached (error, exception, destruction) the
// temporary file is removed and nothing appears under `path`.
class VideoWriter {
 public:
  // Throws OutputError (odd/invalid size, unwritable directory, no encoder) or InputError (audio file missing,
  // unreadable or without an audio stream). Nothing is left on disk when the constructor throws.
  VideoWriter(const std::string& path, int width, int height, VideoWriterOptions options = {});
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // One frame, CV_8UC3 in RGB order, exactly width x height (any row stride).
  void write(const cv::Mat& rgb);
  // One frame from a raw packed RGB24 buffer; stride_bytes = 0 means width * 3.
  void write(const uint8_t* rgb, int width, int height, std::ptrdiff_t stride_bytes = 0);

  // Drains the encoders, completes the audio to frames/fps seconds, writes the trailer and renames the file
  // into place. Throws OutputError (also when no frame was written). Further writes are errors.
  // finish() = close() + commit().
  void finish();
  // For outputs that come with other files (the OUT.json sidecar): close() completes the file but leaves it under
  // temp_path(); commit() then renames it onto path(). Destroyed before commit(), the writer removes the file,
  // so a job that fails after close() leaves nothing under the final name.
  void close();
  void commit();

  int64_t frames_written() const;
  int width() const;
  int height() const;
  const std::string& path() const;        // the final name
  const std::string& temp_path() const;   // where the file is being written
  const std::string& video_encoder() const;  // e.g. "libx264", or "mpeg4" after a fallback
  bool has_audio() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes the best video stream of any container libav reads into RGB uint8 frames.
class VideoReader {
 public:
  explicit VideoReader(const std::string& path);  // throws InputError
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  // Next frame as a new CV_8UC3 RGB Mat; false at the end of the stream. Throws InputError on corrupt data.
  bool read(cv::Mat& rgb);
  // Every remaining frame (keep to short clips: memory grows with length).
  std::vector<cv::Mat> read_all();

  const std::string& path() const;
  int width() const;
  int height() const;
  double fps() const;          // average frame rate (0 when the container does not say)
  // Frame count from the container header, else round(duration * fps); exact counts: probe().
  int64_t frame_count() const;
  double duration() const;     // seconds, of the video stream (container duration when unknown)
  double timestamp() const;    // presentation time in seconds of the last frame read
  int64_t frames_read() const;
  int video_stream_index() const;
  std::string video_codec() const;

  // Audio track in the same file, for the audio decoder: decode `path()` stream `audio_stream_index()`.
  bool has_audio() const;
  int audio_stream_index() const;  // -1 when there is none

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct StreamInfo {
  int index = -1;
  std::string type;    // "video", "audio", "subtitle", "data", "attachment", "unknown"
  std::string codec;   // libav codec name: "h264", "aac", ...
  int64_t frames = -1; // packets counted when probing with count_packets (exact), else the header's, else -1
  double duration = -1;    // seconds (-1 unknown)
  double start_time = 0;   // seconds
  double end_time() const { return duration < 0 ? -1 : start_time + duration; }
  // video
  int width = 0, height = 0;
  double fps = 0;
  std::string pix_fmt;
  // audio
  int sample_rate = 0, channels = 0;
  int frame_size = 0;  // samples per codec frame when known (1024 for AAC)
  std::map<std::string, std::string> metadata;  // stream tags, keys lower-cased
};

struct ProbeResult {
  std::string path;
  std::string format;  // libav demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm"
  double duration = -1;  // container duration in seconds
  std::map<std::string, std::string> metadata;  // container tags, keys lower-cased (Matroska upper-cases them)
  std::vector<StreamInfo> streams;

  // First stream of a type, or nullptr.
  const StreamInfo* first(const std::string& type) const;
  size_t count(const std::string& type) const;
};

// Describes a media file. With count_packets, the whole file is demuxed (not decoded) so that `frames` is
// the exact packet count and `duration` is measured from packet timestamps when the header lacks it; a
// truncated file then throws or shows fewer frames. Durations: the header's when it has one (MP4: exact, edit
// lists applied, so AAC priming is not counted); Matroska has no edit lists, so an AAC track's duration there
// includes the encoder's 1024 priming samples (the muxer shifts every stream by them instead: compare
// end_time()s for A/V alignment). Throws InputError.
ProbeResult probe(const std::string& path, bool count_packets = true);

}  // namespace emo::video
