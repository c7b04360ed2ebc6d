// Golden-fixture access for tests. Fixtures are read in place from $EMO_GOLDEN_DIR
// (default: <repo>/../shared/golden). A missing fixture fails the test; only when the whole root is
// absent (a user's clone without the shared set) do golden tests skip, loudly.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "emo/state_dict.h"

namespace emo::test {

std::string golden_root();
bool golden_root_present();

class Fixture {
 public:
  explicit Fixture(const std::string& name);  // throws std::runtime_error when the folder is missing
  const std::string& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  const io::StateDict& weights() const { return weights_; }
  const io::StateDict& io() const { return io_; }
  at::Tensor input(const std::string& name) const;   // "input.<name>"
  at::Tensor output(const std::string& name) const;  // "output.<name>"
  bool has(const std::string& key) const { return io_.count(key) != 0; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  std::string dir_;
  nlohmann::json config_;
  io::StateDict weights_;
  io::StateDict io_;
};

// max|a-b| <= tol * max(1, max|b|) — the fixtures' suggested check. Reports the worst element.
::testing::AssertionResult AllClose(const at::Tensor& actual, const at::Tensor& expected, double tol = 1e-4);

// Reads a text file (e.g. a fixture's config.json).
nlohmann::json read_json(const std::string& path);

}  // namespace emo::test

// Opens fixture `name` into `var`, skipping (loudly) only when the golden root itself is absent.
#define EMO_GOLDEN_FIXTURE(var, name)                                                                   \
  if (!::emo::test::golden_root_present()) {                                                           \
    GTEST_SKIP() << "GOLDEN FIXTURES NOT FOUND at '" << ::emo::test::golden_root()                     \
                 << "': golden parity NOT RUN (set EMO_GOLDEN_DIR)";                                     \
  }                                                                                                    \
  std::unique_ptr<::emo::test::Fixture> var##_holder;                                                  \
  try {                                                                                                \
    var##_holder = std::make_unique<::emo::test::Fixture>(name);                                       \
  } catch (const std::exception& e) {                                                                  \
    FAIL() << "golden fixture '" << (name) << "' missing or unreadable: " << e.what();                 \
  }                                                                                                    \
  const ::emo::test::Fixture& var = *var##_holder
