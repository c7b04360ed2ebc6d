// Decodes one audio stream of a media file and resamples it, on demand, into an AVAudioFifo in a target
// format (the AAC encoder's). Used by VideoWriter to mux the input audio (internal header).
#pragma once
#include <string>

#include "video/av_util.h"

namespace emo::video::detail {

class AudioSource {
 public:
  // Opens `path` and the audio stream `stream_index` (-1: best). Throws InputError when the file is missing,
  // unreadable or has no decodable audio stream.
  AudioSource(const std::string& path, int stream_index);

  int source_sample_rate() const { return dec_->sample_rate; }
  int source_channels() const { return dec_->ch_layout.nb_channels; }

  // Fixes the output format; must be called once before fill().
  void set_output(AVSampleFormat fmt, int sample_rate, const AVChannelLayout& layout);

  // Decodes until `fifo` holds at least `samples` samples or the input ends. Returns false when the input
  // is exhausted (the fifo may then hold fewer samples). Throws InputError on decode errors.
  bool fill(AVAudioFifo* fifo, int samples);

  const std::string& path() const { return path_; }

 private:
  void convert_and_push(AVAudioFifo* fifo, const AVFrame* in);  // in == nullptr: flush the resampler
  bool send_next_packet();  // false at end of input

  std::string path_;
  InputFormatPtr fmt_;
  CodecContextPtr dec_;
  SwrPtr swr_;
  FramePtr frame_;
  PacketPtr pkt_;
  int stream_ = -1;
  AVSampleFormat out_fmt_ = AV_SAMPLE_FMT_NONE;
  int out_rate_ = 0;
  int out_channels_ = 0;
  bool demux_done_ = false;
  bool decoder_done_ = false;
};

}  // namespace emo::video::detail
