#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "emo/error.h"
#include "emo/mapped_file.h"
#include "emo/state_dict.h"

namespace fs = std::filesystem;
using emo::io::SafetensorsFile;

namespace {

std::string tmp(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("emo_st_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// Raw file: u64 header length, header text, then `data_bytes` zero bytes.
std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes, int64_t hlen_override = -1) {
  std::string p = tmp(name);
  std::ofstream o(p, std::ios::binary);
  uint64_t h = hlen_override >= 0 ? static_cast<uint64_t>(hlen_override) : header.size();
  o.write(reinterpret_cast<const char*>(&h), 8);
  o << header;
  std::string zeros(data_bytes, '\0');
  o << zeros;
  return p;
}

void expect_model_error(const std::string& path, const std::string& needle) {
  try {
    SafetensorsFile::open(path);
    FAIL() << "expected ModelError for " << path;
  } catch (const emo::ModelError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find(path), std::string::npos) << w;
    EXPECT_NE(w.find(needle), std::string::npos) << w;
  }
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypesAndMetadata) {
  emo::io::StateDict sd;
  sd["a.f32"] = torch::randn({3, 4});
  sd["b.f16"] = torch::randn({5}).to(torch::kHalf);
  sd["c.bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  sd["d.f64"] = torch::randn({2}, torch::kDouble);
  sd["e.i64"] = torch::arange(7, torch::kLong);
  sd["f.i32"] = torch::arange(3, torch::kInt);
  sd["g.u8"] = torch::arange(9, torch::kByte).reshape({3, 3});
  sd["h.bool"] = torch::tensor({true, false, true});
  sd["i.scalar"] = torch::tensor(3.5f);
  sd["j.empty"] = torch::zeros({0, 4});
  sd["k.noncontig"] = torch::randn({4, 3}).t();
  std::string p = tmp("rt.safetensors");
  emo::io::write_safetensors(p, sd, {{"format", "pt"}, {"note", "hello"}});
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.metadata().at("note"), "hello");
  ASSERT_EQ(f.entries().size(), sd.size());
  for (const auto& [k, v] : sd) {
    auto t = f.tensor(k);
    EXPECT_EQ(t.scalar_type(), v.scalar_type()) << k;
    EXPECT_EQ(t.sizes(), v.sizes()) << k;
    EXPECT_TRUE(torch::equal(t, v.contiguous())) << k;
  }
  // The writer leaves no temporary files behind.
  for (auto& e : fs::directory_iterator(fs::path(p).parent_path()))
    EXPECT_EQ(e.path().string().find(".part-"), std::string::npos) << e.path();
}

TEST(Safetensors, ZeroCopyViewOutlivesFileObject) {
  std::string p = tmp("view.safetensors");
  emo::io::write_safetensors(p, {{"w", torch::arange(16, torch::kFloat)}});
  at::Tensor t;
  {
    auto f = SafetensorsFile::open(p);
    t = f.tensor("w");
  }
  EXPECT_FLOAT_EQ(t[15].item<float>(), 15.f);
}

TEST(Safetensors, HostileFilesAreRejected) {
  expect_model_error(raw_file("empty.st", "", 0, 0).substr(0), "not valid JSON");
  {
    std::string p = tmp("short.st");
    std::ofstream(p, std::ios::binary) << "abc";
    expect_model_error(p, "shorter than the 8-byte header");
  }
  expect_model_error(raw_file("hlen_past_eof.st", "{}", 0, 1000), "runs past the end of the file");
  expect_model_error(raw_file("hlen_huge.st", "{}", 0, int64_t(1) << 40), "exceeds the 100 MB limit");
  expect_model_error(raw_file("notjson.st", "{\"a\": [1, 2", 0), "not valid JSON");
  expect_model_error(raw_file("notobj.st", "[1, 2, 3]", 0), "not a JSON object");
  expect_model_error(raw_file("baddtype.st", R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", 4),
                     "unsupported dtype 'Q7'");
  expect_model_error(raw_file("sizemismatch.st", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
                     "expected 8");
  expect_model_error(raw_file("overlap.st",
                              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              12),
                     "overlapping");
  expect_model_error(raw_file("gap.st",
                              R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                              12),
                     "gap");
  expect_model_error(raw_file("pasteof.st", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                     "run past the end of the file");
  expect_model_error(raw_file("trailing.st", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
                     "data buffer has 8");
  expect_model_error(
      raw_file("hugeshape.st",
               R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4),
      "overflows");
  expect_model_error(raw_file("negshape.st", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                     "negative");
  expect_model_error(raw_file("badoffsets.st", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4),
                     "end before they begin");
  expect_model_error(raw_file("nooffsets.st", R"({"a":{"dtype":"F32","shape":[1]}})", 4), "lacks");
  expect_model_error(raw_file("badmeta.st", R"({"__metadata__":{"a":1}})", 0), "not a string");
  expect_model_error(tmp("does_not_exist.st"), "cannot open");
}

TEST(Safetensors, TruncatedRealFileIsRejected) {
  std::string p = tmp("full.safetensors");
  emo::io::write_safetensors(p, {{"w", torch::randn({64, 64})}});
  auto size = fs::file_size(p);
  fs::resize_file(p, size / 2);
  expect_model_error(p, "run past the end of the file");
}

TEST(Safetensors, LoadStateDictDetectsFormat) {
  std::string p = tmp("detect.bin");
  emo::io::write_safetensors(p, {{"x", torch::ones({2})}});
  EXPECT_EQ(emo::io::detect_format(p), emo::io::WeightFormat::kSafetensors);
  auto sd = emo::io::load_state_dict(p);
  ASSERT_EQ(sd.count("x"), 1u);
  std::string q = tmp("garbage.bin");
  std::ofstream(q, std::ios::binary) << "this is not a weight file at all";
  EXPECT_THROW(emo::io::load_state_dict(q), emo::ModelError);
}

// The in-memory entry points the fuzz targets use (tests/fuzz/) run the same parsers as the file versions.
TEST(Safetensors, InMemoryEntryPointsMatchTheFileReaders) {
  std::string p = tmp("inmem.safetensors");
  emo::io::write_safetensors(p, {{"w", torch::arange(6, torch::kFloat).reshape({2, 3})}}, {{"format", "pt"}});
  std::ifstream f(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  auto mem = emo::io::MappedFile::from_bytes("mem.safetensors", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  EXPECT_EQ(mem->path(), "mem.safetensors");
  EXPECT_EQ(emo::io::detect_format(mem->data(), mem->size()), emo::io::WeightFormat::kSafetensors);
  auto st = emo::io::SafetensorsFile::open(mem);
  EXPECT_EQ(st.metadata().at("format"), "pt");
  EXPECT_TRUE(torch::equal(st.tensor("w"), emo::io::SafetensorsFile::open(p).tensor("w")));
  // Errors name the in-memory file like a path.
  auto cut = emo::io::MappedFile::from_bytes("cut.safetensors", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size() - 4);
  try {
    emo::io::SafetensorsFile::open(cut);
    ADD_FAILURE() << "a truncated buffer was accepted";
  } catch (const emo::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.safetensors"), std::string::npos) << e.what();
  }
  auto empty = emo::io::MappedFile::from_bytes("empty.pth", nullptr, 0);
  EXPECT_THROW(emo::io::load_torch_checkpoint(empty), emo::ModelError);
}

// Found by fuzz_pth (tests/fuzz/corpus/pth/crash-zip64-*): a file of 22 to 55 bytes whose end-of-central-directory
// record asks for ZIP64 made `n - 56` wrap around, so any ZIP64 record offset passed the bounds check and was read
// (SEGV far outside the file). Refused now as an invalid archive.
TEST(TorchZip, Zip64RecordOffsetInAShortFileIsRefused) {
  std::string b;
  auto put32 = [&b](uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(v >> (8 * i))); };
  auto put16 = [&b](uint16_t v) { for (int i = 0; i < 2; ++i) b.push_back(static_cast<char>(v >> (8 * i))); };
  put32(0x07064b50); put32(0); put32(0); put32(0x10); put32(1);           // ZIP64 locator: record at 0x1000000000
  put32(0x06054b50); put16(0); put16(0); put16(0xFFFF); put16(0xFFFF);    // EOCD asking for ZIP64
  put32(0xFFFFFFFF); put32(0xFFFFFFFF); put16(0);
  ASSERT_EQ(b.size(), 42u);
  auto f = emo::io::MappedFile::from_bytes("short.pth", reinterpret_cast<const uint8_t*>(b.data()), b.size());
  try {
    emo::io::load_torch_checkpoint(f);
    ADD_FAILURE() << "accepted";
  } catch (const emo::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("ZIP64 end record out of range"), std::string::npos) << e.what();
  }
}
