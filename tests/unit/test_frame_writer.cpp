// pipeline::AsyncFrameWriter: frames reach the consumer in push order, quantised exactly as the synchronous path
// did; the queue is bounded; a consumer error comes back on the producer's thread; a writer destroyed mid-job
// (cancel) joins without consuming the rest.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "emo/error.h"
#include "pipeline/frame_writer.h"

namespace {

using emo::pipeline::AsyncFrameWriter;

torch::Tensor frames(int64_t n, int64_t s, float base) {  // [n, 3, s, s] in [0, 1], distinct per batch
  return (torch::arange(n * 3 * s * s, torch::kFloat).reshape({n, 3, s, s}) / (n * 3 * s * s) * 0.5 + base).clamp(0, 1);
}

TEST(AsyncFrameWriter, ConsumesInPushOrderWithHallosQuantisation) {
  std::vector<torch::Tensor> got;
  AsyncFrameWriter w([&](const torch::Tensor& u8) { got.push_back(u8.clone()); }, 8);
  std::vector<torch::Tensor> pushed;
  for (int b = 0; b < 6; ++b) {
    pushed.push_back(frames(b % 3 + 1, 5, 0.1f * b));
    w.push(pushed.back());
  }
  w.finish();
  ASSERT_EQ(got.size(), pushed.size());
  int64_t total = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto expected = (pushed[i] * 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
    EXPECT_TRUE(torch::equal(got[i], expected)) << "batch " << i;
    EXPECT_TRUE(got[i].is_contiguous());
    total += got[i].size(0);
  }
  EXPECT_EQ(w.frames_consumed(), total);
}

TEST(AsyncFrameWriter, QueueIsBoundedAndTheProducerRunsAhead) {
  std::atomic<int64_t> in_flight{0}, max_in_flight{0};
  std::atomic<int> consumed{0};
  AsyncFrameWriter w([&](const torch::Tensor& u8) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    in_flight -= u8.size(0);
    ++consumed;
  }, 4);
  const auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < 10; ++b) {
    in_flight += 2;
    max_in_flight = std::max<int64_t>(max_in_flight, in_flight);
    w.push(frames(2, 4, 0.2f));
  }
  const double push_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  w.finish();
  EXPECT_EQ(consumed.load(), 10);
  // 4 frames may wait for the consumer, plus the batch being pushed: never the whole job at once.
  EXPECT_LE(max_in_flight.load(), 6);
  EXPECT_GT(push_s, 0.05) << "a full queue must make push() wait for the consumer";
}

TEST(AsyncFrameWriter, ConsumerErrorIsRethrownOnTheProducersThread) {
  int calls = 0;
  AsyncFrameWriter w([&](const torch::Tensor&) {
    if (++calls == 2) throw emo::OutputError("out.mp4: No space left on device");
  }, 2);
  bool thrown = false;
  try {
    for (int b = 0; b < 50; ++b) w.push(frames(1, 4, 0.3f));
    w.finish();
  } catch (const emo::OutputError& e) {
    thrown = true;
    EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos);
  }
  EXPECT_TRUE(thrown) << "the consumer's error (with its type) must reach push() or finish()";
  EXPECT_EQ(calls, 2) << "nothing is consumed after the error";
}

TEST(AsyncFrameWriter, DestroyedWithoutFinishDropsTheRestAndJoins) {
  std::atomic<int> consumed{0};
  {
    AsyncFrameWriter w([&](const torch::Tensor&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      ++consumed;
    }, 64);
    for (int b = 0; b < 20; ++b) w.push(frames(1, 4, 0.4f));
  }  // a cancelled job: no finish()
  EXPECT_LT(consumed.load(), 20);
}

TEST(AsyncFrameWriter, FinishWithNothingPushedAndTwice) {
  AsyncFrameWriter w([](const torch::Tensor&) { FAIL() << "nothing to consume"; }, 4);
  w.finish();
  w.finish();
  EXPECT_EQ(w.frames_consumed(), 0);
  EXPECT_THROW(w.push(frames(1, 4, 0.f)), std::logic_error);
}

}  // namespace
