#include "pipeline/frame_writer.h"

#include <c10/core/Event.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace emo::pipeline {

namespace {
struct Batch {
  torch::Tensor u8;                 // [n, S, S, 3] host
  std::optional<c10::Event> ready;  // device -> host copy done (non-CPU devices only)
};
}  // namespace

struct AsyncFrameWriter::State {
  Consumer consume;
  int64_t max_pending = 1;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> queue;
  int64_t pending_frames = 0;  // queued + being consumed
  bool stop = false;           // producer is done (finish) or gone (destructor)
  bool abandon = false;        // destructor without finish: drop what is queued
  std::exception_ptr error;
  double busy_s = 0;
  int64_t consumed = 0;
  std::thread thread;

  void run() {
    for (;;) {
      Batch b;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !queue.empty() || stop; });
        if (abandon || error || queue.empty()) return;
        b = std::move(queue.front());
        queue.pop_front();
      }
      const int64_t n = b.u8.size(0);
      try {
        if (b.ready) b.ready->synchronize();  // this thread waits for the copy; the producer never does
        const auto t0 = std::chrono::steady_clock::now();
        consume(b.u8);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        busy_s += dt;
        consumed += n;
        pending_frames -= n;
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        error = std::current_exception();
        queue.clear();
        pending_frames = 0;
      }
      cv.notify_all();
    }
  }

  void rethrow_locked() {
    if (error) {
      auto e = error;
      error = nullptr;  // reported once; the thread has stopped consuming
      stop = true;
      std::rethrow_exception(e);
    }
  }
};

AsyncFrameWriter::AsyncFrameWriter(Consumer consume, int64_t max_pending_frames) : state_(std::make_unique<State>()) {
  state_->consume = std::move(consume);
  state_->max_pending = std::max<int64_t>(1, max_pending_frames);
  state_->thread = std::thread([s = state_.get()] { s->run(); });
}

AsyncFrameWriter::~AsyncFrameWriter() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->stop) state_->abandon = true;
    state_->stop = true;
  }
  state_->cv.notify_all();
  if (state_->thread.joinable()) state_->thread.join();
}

void AsyncFrameWriter::push(const torch::Tensor& frames01) {
  // [n, 3, S, S] float [0, 1] -> [n, S, S, 3] uint8 on the networks' device (hallo: (x * 255).to(uint8), truncating)
  auto u8 = (frames01 * 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  Batch b;
  if (u8.device().is_cpu()) {
    b.u8 = u8;
  } else {
    b.u8 = torch::empty(u8.sizes(), torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    b.u8.copy_(u8, /*non_blocking=*/true);
    const auto* impl = c10::impl::getDeviceGuardImpl(u8.device().type());
    b.ready.emplace(u8.device().type());
    b.ready->record(impl->getStream(u8.device()));
  }
  const int64_t n = b.u8.size(0);
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->rethrow_locked();
  if (state_->stop) throw std::logic_error("AsyncFrameWriter::push after finish");
  // Wait for room (a batch larger than the bound is still accepted once the queue is empty).
  state_->cv.wait(lock, [&] {
    return state_->error || state_->pending_frames == 0 || state_->pending_frames + n <= state_->max_pending;
  });
  state_->rethrow_locked();
  state_->queue.push_back(std::move(b));
  state_->pending_frames += n;
  lock.unlock();
  state_->cv.notify_all();
}

void AsyncFrameWriter::finish() {
  {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait(lock, [&] { return state_->error || state_->pending_frames == 0; });
    state_->stop = true;
  }
  state_->cv.notify_all();
  if (state_->thread.joinable()) state_->thread.join();
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rethrow_locked();
}

double AsyncFrameWriter::busy_seconds() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->busy_s;
}

int64_t AsyncFrameWriter::frames_consumed() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->consumed;
}

}  // namespace emo::pipeline
