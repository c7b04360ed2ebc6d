// Progress rendering for the CLI: a bar on a terminal, plain lines otherwise (logs, CI, Slurm).
#pragma once
#include <string>

#include "emo/log.h"

namespace emo::cli {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet);
  ~ProgressPrinter();
  void operator()(const Progress& p);
  void finish();

 private:
  bool quiet_;
  bool tty_;
  double last_print_ = -1;
  double denoise_start_ = -1;
  int steps_done_ = 0;
  bool open_line_ = false;
};

}  // namespace emo::cli
