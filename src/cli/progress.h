// Progress rendering for the CLI: a bar on a terminal, plain lines otherwise (logs, CI, Slurm).
#pragma once
#include <string>

#include "emo/log.h"

namespace emo::cli {

// One printer serves a whole batch: a new job is seen when the elapsed time starts again from zero, and the
// step count, rate and ETA restart with it.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet);
  ~ProgressPrinter();
  void operator()(const Progress& p);
  void finish();  // ends an open bar line (before anything else is written to stderr)

 private:
  bool quiet_;
  bool tty_;
  double last_elapsed_ = -1;
  double last_print_ = -1;
  double denoise_start_ = -1;
  int steps_done_ = 0;
  bool open_line_ = false;
};

// While alive, library log lines first end the printer's open bar line, so a warning in the middle of a job
// does not land on the end of the bar. Restores the default log sink when destroyed.
class ProgressLogGuard {
 public:
  explicit ProgressLogGuard(ProgressPrinter& printer);
  ~ProgressLogGuard();
  ProgressLogGuard(const ProgressLogGuard&) = delete;
  ProgressLogGuard& operator=(const ProgressLogGuard&) = delete;
};

}  // namespace emo::cli
