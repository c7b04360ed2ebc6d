// The last stage of the clip loop on a thread of its own: decoded frames are turned into 8-bit RGB on the
// networks' device, copied to (pinned, on CUDA) host memory without waiting, and handed to a writer thread that
// waits for the copy, then pastes back / encodes / muxes. The networks go on with the next clip meanwhile: the
// device never waits for the encoder, and the main thread never synchronises with the device to deliver frames.
//
// Frames are consumed in the order they were pushed. An error in the consumer (disk full, encoder failure) stops
// the thread and is rethrown on the caller's thread by the next push() or by finish(). Destroying the writer
// without finish() (a cancelled or failed job) drops what is still queued and joins the thread.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>

namespace emo::pipeline {

class AsyncFrameWriter {
 public:
  // consume(u8): u8 is [n, S, S, 3] uint8 RGB on the host, contiguous; called on the writer thread.
  using Consumer = std::function<void(const torch::Tensor& u8)>;
  // max_pending_frames: how many frames may wait for the consumer before push() blocks (bounds host memory).
  AsyncFrameWriter(Consumer consume, int64_t max_pending_frames);
  ~AsyncFrameWriter();
  AsyncFrameWriter(const AsyncFrameWriter&) = delete;
  AsyncFrameWriter& operator=(const AsyncFrameWriter&) = delete;

  // frames01: [n, 3, S, S] float in [0, 1] on any device. Quantised as Hallo does (x * 255, truncated to uint8).
  void push(const torch::Tensor& frames01);
  // Blocks until every pushed frame has been consumed; rethrows the consumer's error. Idempotent.
  void finish();
  // Seconds the writer thread spent inside the consumer (encoding), and the frames it consumed.
  double busy_seconds() const;
  int64_t frames_consumed() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace emo::pipeline
