// Encodes test audio with libav's encoders (mp3, aac, flac, ...): for tests that need compressed inputs.
#pragma once
#include <string>
#include <vector>

namespace emo::test {

// Interleaved float samples -> `path` (container from the extension) with `encoder` (e.g. "libmp3lame").
// Returns false when that encoder is not in this libavcodec build or writing fails.
bool encode_audio(const std::string& path, const char* encoder, const std::vector<float>& interleaved, int rate,
                  int channels);

}  // namespace emo::test
