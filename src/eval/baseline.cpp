// Regression check of an `emo eval --json` result against a baseline with per-metric tolerances
// (scripts/hdtf/run_regression.sh, docs/hdtf.md). Pure logic: no model, no decoding.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "emo/error.h"
#include "emo/eval.h"

namespace emo::eval {

namespace {
nlohmann::json parse(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw InputError(what + ": not valid JSON: " + e.what());
  }
}

// Numeric value of a metric entry; "inf" strings (identical frames in PSNR) map to infinity.
bool value_of(const nlohmann::json& e, double& out) {
  if (!e.is_object() || !e.contains("value")) return false;
  if (e.contains("available") && e["available"].is_boolean() && !e["available"].get<bool>()) return false;
  const auto& v = e["value"];
  if (v.is_number()) {
    out = v.get<double>();
    return true;
  }
  if (v.is_string() && v.get<std::string>() == "inf") {
    out = INFINITY;
    return true;
  }
  return false;
}
}  // namespace

bool BaselineComparison::regressed() const {
  for (const auto& c : checks)
    if (c.regressed) return true;
  return false;
}

std::string BaselineComparison::to_text() const {
  std::ostringstream os;
  for (const auto& c : checks) {
    char line[256];
    if (c.available)
      std::snprintf(line, sizeof line, "%-7s %12.6f  baseline %12.6f  tolerance %g (%s)  %s", c.metric.c_str(), c.value,
                    c.baseline, c.tolerance, c.higher_is_better ? "higher is better" : "lower is better",
                    c.regressed ? "REGRESSED" : "ok");
    else
      std::snprintf(line, sizeof line, "%-7s %12s  baseline %12.6f  %s", c.metric.c_str(), "unavailable", c.baseline,
                    c.regressed ? "REGRESSED" : "ok (optional)");
    os << line;
    if (!c.note.empty()) os << "  " << c.note;
    os << "\n";
  }
  return os.str();
}

BaselineComparison compare_with_baseline(const std::string& result_json, const std::string& baseline_json,
                                         const std::string& what) {
  const auto res = parse(result_json, "result");
  const auto base = parse(baseline_json, what);
  if (!base.is_object() || !base.contains("metrics") || !base["metrics"].is_object())
    throw InputError(what + ": expected an object with \"metrics\"");
  const nlohmann::json empty = nlohmann::json::object();
  const auto& rm = res.is_object() && res.contains("metrics") ? res["metrics"] : empty;
  const auto& tol = base.contains("tolerances") && base["tolerances"].is_object() ? base["tolerances"] : empty;
  static const std::set<std::string> lower = {"fid", "fvd", "sync_d", "lse_d", "e_fid"};
  BaselineComparison out;
  for (const auto& [name, e] : base["metrics"].items()) {
    BaselineCheck c;
    c.metric = name;
    if (!value_of(e, c.baseline)) continue;  // unavailable in the baseline: nothing to hold the result to
    c.higher_is_better = lower.count(name) == 0;
    if (e.contains("higher_is_better") && e["higher_is_better"].is_boolean())
      c.higher_is_better = e["higher_is_better"].get<bool>();
    if (e.contains("tolerance") && e["tolerance"].is_number()) c.tolerance = e["tolerance"].get<double>();
    if (tol.contains(name) && tol[name].is_number()) c.tolerance = tol[name].get<double>();
    if (c.tolerance < 0) throw InputError(what + ": negative tolerance for " + name);
    const bool optional = e.contains("optional") && e["optional"].is_boolean() && e["optional"].get<bool>();
    if (rm.is_object() && rm.contains(name) && value_of(rm[name], c.value)) {
      c.available = true;
      if (std::isnan(c.value)) {
        c.regressed = true;
        c.note = "value is NaN";
      } else if (std::isinf(c.value) && std::isinf(c.baseline) && (c.value > 0) == (c.baseline > 0)) {
        c.regressed = false;  // e.g. PSNR of identical frames in both
      } else {
        const double worse_by = c.higher_is_better ? c.baseline - c.value : c.value - c.baseline;
        // Slack of a few ulps so that "exactly tolerance worse" passes despite decimal JSON values
        // (0.75 - 0.70 > 0.05 in binary floating point).
        const double slack = 1e-12 * std::max({1.0, std::abs(c.baseline), std::abs(c.value)});
        c.regressed = worse_by > c.tolerance + slack;
      }
    } else {
      c.regressed = !optional;
      std::string why = "missing from the result";
      if (rm.is_object() && rm.contains(name) && rm[name].is_object() && rm[name].contains("reason"))
        why = rm[name]["reason"].is_string() ? rm[name]["reason"].get<std::string>() : why;
      c.note = why;
    }
    out.checks.push_back(c);
  }
  return out;
}

}  // namespace emo::eval
