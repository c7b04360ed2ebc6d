// Batch manifests: JSON Lines and CSV parsing, per-job GenerateParams overrides, validation of the whole
// manifest before any work starts, and --shard K/N selection.
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "emo/batch.h"
#include "pipeline/sidecar.h"

namespace fs = std::filesystem;

namespace emo::batch {

namespace {

enum class Kind { kInt, kInt64, kDouble, kBool, kString };

struct Field {
  const char* name;
  Kind kind;
  int GenerateParams::*i = nullptr;
  int64_t GenerateParams::*i64 = nullptr;
  double GenerateParams::*d = nullptr;
  bool GenerateParams::*b = nullptr;
  std::string GenerateParams::*s = nullptr;
};

Field int_field(const char* n, int GenerateParams::*m) { Field f{n, Kind::kInt}; f.i = m; return f; }
Field i64_field(const char* n, int64_t GenerateParams::*m) { Field f{n, Kind::kInt64}; f.i64 = m; return f; }
Field dbl_field(const char* n, double GenerateParams::*m) { Field f{n, Kind::kDouble}; f.d = m; return f; }
Field bool_field(const char* n, bool GenerateParams::*m) { Field f{n, Kind::kBool}; f.b = m; return f; }
Field str_field(const char* n, std::string GenerateParams::*m) { Field f{n, Kind::kString}; f.s = m; return f; }

// write_sidecar is deliberately absent: --resume needs the sidecar, so batch always writes it.
const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      int_field("steps", &GenerateParams::steps),
      str_field("sampler", &GenerateParams::sampler),
      dbl_field("cfg_scale", &GenerateParams::cfg_scale),
      i64_field("seed", &GenerateParams::seed),
      int_field("fps", &GenerateParams::fps),
      int_field("width", &GenerateParams::width),
      int_field("height", &GenerateParams::height),
      dbl_field("pose_weight", &GenerateParams::pose_weight),
      dbl_field("face_weight", &GenerateParams::face_weight),
      dbl_field("lip_weight", &GenerateParams::lip_weight),
      dbl_field("speed", &GenerateParams::speed),
      int_field("crf", &GenerateParams::crf),
      bool_field("crop", &GenerateParams::crop),
      bool_field("paste_back", &GenerateParams::paste_back),
      bool_field("require_face", &GenerateParams::require_face),
      dbl_field("max_audio_seconds", &GenerateParams::max_audio_seconds),
      bool_field("vocal_separation", &GenerateParams::vocal_separation),
  };
  return f;
}

std::string normalize_key(std::string k) {
  for (auto& c : k) {
    if (c == '-') c = '_';
    else c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return k;
}

const Field* find_field(const std::string& key) {
  std::string k = normalize_key(key);
  for (const auto& f : fields())
    if (k == f.name) return &f;
  return nullptr;
}

std::string key_list() {
  std::string s = "image, audio, output";
  for (const auto& f : fields()) s += std::string(", ") + f.name;
  return s;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kInt:
    case Kind::kInt64: return "an integer";
    case Kind::kDouble: return "a number";
    case Kind::kBool: return "true or false";
    case Kind::kString: return "a string";
  }
  return "";
}

[[noreturn]] void bad_value(const Field& f, const std::string& text) {
  throw UsageError(std::string(f.name) + ": expected " + kind_name(f.kind) + ", got '" + text + "'");
}

void set_int(GenerateParams& p, const Field& f, long long v, const std::string& text) {
  if (f.kind == Kind::kInt64) {
    p.*(f.i64) = v;
  } else {
    if (v < INT32_MIN || v > INT32_MAX) bad_value(f, text);
    p.*(f.i) = static_cast<int>(v);
  }
}

// Sets a field from a JSON value (strict types: numbers for numbers, booleans for booleans).
void apply_json(GenerateParams& p, const Field& f, const nlohmann::json& v) {
  switch (f.kind) {
    case Kind::kInt:
    case Kind::kInt64:
      if (v.is_number_integer()) return set_int(p, f, v.get<long long>(), v.dump());
      if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
          return set_int(p, f, static_cast<long long>(d), v.dump());
      }
      bad_value(f, v.dump());
    case Kind::kDouble:
      if (!v.is_number()) bad_value(f, v.dump());
      p.*(f.d) = v.get<double>();
      return;
    case Kind::kBool:
      if (!v.is_boolean()) bad_value(f, v.dump());
      p.*(f.b) = v.get<bool>();
      return;
    case Kind::kString:
      if (!v.is_string()) bad_value(f, v.dump());
      p.*(f.s) = v.get<std::string>();
      return;
  }
}

}  // namespace

const std::vector<std::string>& override_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const auto& f : fields()) k.push_back(f.name);
    return k;
  }();
  return keys;
}

void apply_override(GenerateParams& p, const std::string& key, const std::string& raw) {
  const Field* f = find_field(key);
  if (!f) throw UsageError("unknown key '" + key + "' (expected one of: " + key_list() + ")");
  std::string text = trim(raw);
  switch (f->kind) {
    case Kind::kInt:
    case Kind::kInt64: {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || errno != 0 || *end != '\0') bad_value(*f, raw);
      set_int(p, *f, v, raw);
      return;
    }
    case Kind::kDouble: {
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || errno != 0 || *end != '\0') bad_value(*f, raw);
      p.*(f->d) = v;
      return;
    }
    case Kind::kBool: {
      std::string t = normalize_key(text);
      if (t == "true" || t == "1" || t == "yes") p.*(f->b) = true;
      else if (t == "false" || t == "0" || t == "no") p.*(f->b) = false;
      else bad_value(*f, raw);
      return;
    }
    case Kind::kString:
      p.*(f->s) = text;
      return;
  }
}

// The model-independent rules of emo::validate (src/pipeline/validate.cpp); the preset-dependent ones run per
// job in run_batch, where the model's preset is known.
void validate_params(const GenerateParams& p) { emo::validate(p); }

namespace {

struct RawJob {
  int line = 0;
  std::string image, audio, output;
  GenerateParams params;
  std::vector<std::string> problems;  // found while parsing; more are added by the per-job checks
};

std::string resolve(const std::string& base_dir, const std::string& p) {
  fs::path path(p);
  if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
  return path.lexically_normal().string();
}

// One JSON Lines line -> job; throws UsageError with the problem (the caller adds the line number).
RawJob parse_json_line(const std::string& line, const GenerateParams& defaults) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range.406 for a number too large for a double (1e400; found by fuzz_manifest_jsonl,
    // which used to escape as an internal error). Drop nlohmann's "[json.exception.X] parse error at ...: " prefix.
    std::string what = e.what();
    auto colon = what.find("]: ");
    auto bracket = what.find("] ");
    if (colon != std::string::npos) what = what.substr(colon + 3);
    else if (bracket != std::string::npos) what = what.substr(bracket + 2);
    throw UsageError("invalid JSON (" + what + ")");
  }
  if (!j.is_object()) throw UsageError("expected a JSON object {\"image\": ..., \"audio\": ..., \"output\": ...}");
  RawJob r;
  r.params = defaults;
  std::vector<std::string> problems;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    std::string k = normalize_key(key);
    if (k == "image" || k == "audio" || k == "output") {
      if (!it.value().is_string()) {
        problems.push_back(k + ": expected a path string");
        continue;
      }
      (k == "image" ? r.image : k == "audio" ? r.audio : r.output) = it.value().get<std::string>();
      continue;
    }
    const Field* f = find_field(key);
    if (!f) {
      problems.push_back("unknown key '" + key + "'");
      continue;
    }
    try {
      apply_json(r.params, *f, it.value());
    } catch (const UsageError& e) {
      problems.push_back(e.what());
    }
  }
  r.problems = std::move(problems);
  return r;
}

// Splits one CSV record (RFC 4180 quoting; no newlines inside quotes). Throws UsageError.
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::string cur;
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    cur.clear();
    while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < n && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            cur += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        cur += line[i++];
      }
      if (!closed) throw UsageError("unterminated quoted field (quoted fields cannot span lines)");
      while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i < n && line[i] != ',') throw UsageError("unexpected character after a quoted field");
      cells.push_back(cur);
    } else {
      size_t start = i;
      while (i < n && line[i] != ',') ++i;
      std::string cell = trim(line.substr(start, i - start));
      if (cell.find('"') != std::string::npos) throw UsageError("stray quote in an unquoted field");
      cells.push_back(cell);
    }
    if (i >= n) break;
    ++i;  // the comma
  }
  return cells;
}

bool skippable(const std::string& line) {
  std::string t = trim(line);
  return t.empty() || t[0] == '#';
}

std::string ext_of(const std::string& p) {
  std::string e = fs::path(p).extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

ManifestFormat detect(const std::string& name, const std::string& text) {
  std::string e = ext_of(name);
  if (e == ".csv") return ManifestFormat::kCsv;
  if (e == ".jsonl" || e == ".ndjson" || e == ".json") return ManifestFormat::kJsonLines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (skippable(line)) continue;
    return trim(line)[0] == '{' ? ManifestFormat::kJsonLines : ManifestFormat::kCsv;
  }
  return ManifestFormat::kJsonLines;
}

}  // namespace

Manifest parse_manifest_text(const std::string& text, const std::string& name, const std::string& base_dir,
                             const GenerateParams& defaults, ManifestFormat format) {
  validate_params(defaults);
  Manifest m;
  m.path = name;
  m.format = format == ManifestFormat::kAuto ? detect(name, text) : format;

  std::vector<std::pair<int, std::string>> errors;  // (line, problem)
  std::vector<RawJob> raw;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  std::vector<std::string> header;  // CSV column keys (normalized)
  bool have_header = false;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
    if (skippable(line)) continue;
    try {
      if (m.format == ManifestFormat::kJsonLines) {
        RawJob r = parse_json_line(line, defaults);
        r.line = lineno;
        raw.push_back(std::move(r));
        continue;
      }
      auto cells = split_csv(line);
      if (!have_header) {
        have_header = true;
        std::vector<std::string> problems;
        std::map<std::string, int> seen;
        for (auto& c : cells) {
          std::string k = normalize_key(c);
          if (k != "image" && k != "audio" && k != "output" && !find_field(k))
            problems.push_back("unknown column '" + c + "'");
          if (seen[k]++) problems.push_back("duplicate column '" + c + "'");
          header.push_back(k);
        }
        for (const char* req : {"image", "audio", "output"})
          if (!seen.count(req)) problems.push_back(std::string("missing column '") + req + "'");
        if (!problems.empty()) {
          std::string msg = "header: ";
          for (size_t i = 0; i < problems.size(); ++i) msg += (i ? ", " : "") + problems[i];
          msg += " (columns: " + key_list() + ")";
          throw UsageError(msg);
        }
        continue;
      }
      if (cells.size() != header.size())
        throw UsageError("expected " + std::to_string(header.size()) + " fields, got " + std::to_string(cells.size()));
      RawJob r;
      r.line = lineno;
      r.params = defaults;
      std::vector<std::string> problems;
      for (size_t c = 0; c < cells.size(); ++c) {
        const std::string& k = header[c];
        if (k == "image") r.image = cells[c];
        else if (k == "audio") r.audio = cells[c];
        else if (k == "output") r.output = cells[c];
        else if (!cells[c].empty()) {  // empty cell: keep the default
          try {
            apply_override(r.params, k, cells[c]);
          } catch (const UsageError& e) {
            problems.push_back(e.what());
          }
        }
      }
      r.problems = std::move(problems);
      raw.push_back(std::move(r));
    } catch (const UsageError& e) {
      errors.emplace_back(lineno, e.what());
    }
  }

  // Per-job checks: required fields, output container, parameter ranges, duplicate outputs.
  std::map<std::string, int> output_line, sidecar_line;
  for (auto& r : raw) {
    std::vector<std::string> problems = r.problems;
    if (r.image.empty()) problems.push_back("missing \"image\"");
    if (r.audio.empty()) problems.push_back("missing \"audio\"");
    if (r.output.empty()) problems.push_back("missing \"output\"");
    if (!r.output.empty()) {
      std::string e = ext_of(r.output);
      if (e != ".mp4" && e != ".mkv") problems.push_back("output '" + r.output + "' must end in .mp4 or .mkv");
    }
    for (auto& prob : parameter_problems(r.params)) problems.push_back(prob);
    Job job;
    job.line = r.line;
    job.request.image = r.image.empty() ? "" : resolve(base_dir, r.image);
    job.request.audio = r.audio.empty() ? "" : resolve(base_dir, r.audio);
    job.request.output = r.output.empty() ? "" : resolve(base_dir, r.output);
    job.request.params = r.params;
    job.request.params.write_sidecar = true;
    if (!job.request.output.empty()) {
      std::error_code ec;
      fs::path abs = fs::absolute(job.request.output, ec).lexically_normal();
      std::string key = ec ? job.request.output : abs.string();
      auto [it, fresh] = output_line.emplace(key, r.line);
      if (!fresh) {
        problems.push_back("output '" + r.output + "' is also the output of line " + std::to_string(it->second));
      } else {
        auto [st, sfresh] = sidecar_line.emplace(pipeline::sidecar_path(key), r.line);
        if (!sfresh)
          problems.push_back("output '" + r.output + "' would share its sidecar " + fs::path(st->first).filename().string() +
                             " with the output of line " + std::to_string(st->second));
      }
      if (job.request.output == job.request.image || job.request.output == job.request.audio)
        problems.push_back("output '" + r.output + "' is also an input");
    }
    if (!problems.empty()) {
      std::string msg;
      for (size_t i = 0; i < problems.size(); ++i) msg += (i ? ", " : "") + problems[i];
      errors.emplace_back(r.line, msg);
      continue;
    }
    job.index = m.jobs.size();
    m.jobs.push_back(std::move(job));
  }
  if (m.format == ManifestFormat::kCsv && !have_header && errors.empty())
    errors.emplace_back(0, "empty CSV manifest (expected a header row naming the columns image,audio,output,...)");

  if (!errors.empty()) {
    std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    constexpr size_t kMaxListed = 20;
    std::string msg = name + ": " + std::to_string(errors.size()) + " malformed line" + (errors.size() > 1 ? "s" : "") +
                      " (nothing was rendered): ";
    for (size_t i = 0; i < errors.size() && i < kMaxListed; ++i) {
      if (i) msg += "; ";
      msg += errors[i].first > 0 ? "line " + std::to_string(errors[i].first) + ": " + errors[i].second : errors[i].second;
    }
    if (errors.size() > kMaxListed) msg += "; ... and " + std::to_string(errors.size() - kMaxListed) + " more";
    throw InputError(msg);
  }
  return m;
}

Manifest parse_manifest(const std::string& path, const GenerateParams& defaults, ManifestFormat format) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path + ": manifest not found (or not a regular file)");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot read manifest");
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string base = fs::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return parse_manifest_text(ss.str(), path, base, defaults, format);
}

Shard parse_shard(const std::string& text) {
  auto slash = text.find('/');
  auto bad = [&]() -> UsageError {
    return UsageError("--shard '" + text + "': expected K/N with 0 <= K < N (e.g. 0/4 ... 3/4)");
  };
  if (slash == std::string::npos) throw bad();
  std::string a = trim(text.substr(0, slash)), b = trim(text.substr(slash + 1));
  auto num = [&](const std::string& s) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) throw bad();
    return std::stoi(s);
  };
  Shard s{num(a), num(b)};
  if (s.count < 1 || s.index >= s.count) throw bad();
  return s;
}

std::vector<Job> select_shard(const std::vector<Job>& jobs, const Shard& shard) {
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    throw UsageError("invalid shard " + shard.str());
  std::vector<Job> out;
  for (const auto& j : jobs)
    if (j.index % static_cast<size_t>(shard.count) == static_cast<size_t>(shard.index)) out.push_back(j);
  return out;
}

}  // namespace emo::batch
