// emo::download_hub_repo against an in-process fake Hub (tests/support/fake_hub.h): full download, resume,
// verification, skip on re-run, errors and their exit codes, mirrors, tokens.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "emo/download.h"
#include "hub/digest.h"
#include "support/fake_hub.h"

// A named namespace: unity builds put several test files into one translation unit.
namespace emo::hub_download_test {

namespace fs = std::filesystem;
using emo::test::FakeHubFile;
using emo::test::FakeHubRepo;
using emo::test::FakeHubServer;


std::string bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return s;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

std::vector<std::string> leftovers(const fs::path& dir) {  // temporary files left anywhere under dir
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".part-") != std::string::npos) out.push_back(e.path().string());
  return out;
}

const std::string kNet = bytes(300000, 1);
const std::string kVae = bytes(70000, 2);
const std::string kConfig = R"({"_class_name": "UNet2DConditionModel", "in_channels": 4})";
const std::string kVocab = R"({"<pad>": 0, "a": 1})";

FakeHubRepo weights_repo(const std::string& id = "org/weights") {
  FakeHubRepo r;
  r.id = id;
  r.files = {{"hallo/net.pth", kNet, true},
             {"sd-vae-ft-mse/diffusion_pytorch_model.safetensors", kVae, true},
             {"stable-diffusion-v1-5/unet/config.json", kConfig, false},
             {"wav2vec/vocab file.json", kVocab, false}};  // a space: the path must be URL-encoded
  return r;
}

class HubDownload : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("HF_TOKEN");
    ::unsetenv("HF_ENDPOINT");
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);  // a CI proxy must not intercept the loopback server
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    char tmpl[] = "/tmp/emo_download_XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ / "models";
    server_.add_repo(weights_repo());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  emo::DownloadOptions options() const {
    emo::DownloadOptions o;
    o.dir = dir_.string();
    o.repo = "org/weights";
    o.endpoint = server_.endpoint();
    o.retries = 2;
    o.retry_delay_ms = 1;
    o.connect_timeout_s = 5;
    o.stall_timeout_s = 10;
    return o;
  }
  void expect_all_files() const {
    EXPECT_EQ(read(dir_ / "hallo/net.pth"), kNet);
    EXPECT_EQ(read(dir_ / "sd-vae-ft-mse/diffusion_pytorch_model.safetensors"), kVae);
    EXPECT_EQ(read(dir_ / "stable-diffusion-v1-5/unet/config.json"), kConfig);
    EXPECT_EQ(read(dir_ / "wav2vec/vocab file.json"), kVocab);
    EXPECT_TRUE(leftovers(dir_).empty()) << leftovers(dir_).front();
  }
  template <typename E>
  E expect_throw(const emo::DownloadOptions& o) {
    try {
      emo::download_hub_repo(o);
    } catch (const E& e) {
      return e;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception: " << e.what();
      throw;
    }
    ADD_FAILURE() << "no exception";
    throw std::runtime_error("no exception");
  }

  fs::path root_, dir_;
  FakeHubServer server_;
};


TEST(HubDigest, KnownVectors) {
  EXPECT_EQ(emo::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(emo::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(emo::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(emo::sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(emo::sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(emo::sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  // Streaming in odd pieces gives the same digest as one update.
  const std::string data = bytes(10000, 7);
  emo::hub::Sha256 a;
  for (size_t i = 0; i < data.size(); i += 37) a.update(data.data() + i, std::min<size_t>(37, data.size() - i));
  EXPECT_EQ(a.hex_digest(), emo::sha256_hex(data));
}

TEST(HubDigest, GitBlobSha1OfFiles) {
  char tmpl[] = "/tmp/emo_digest_XXXXXX";
  fs::path d = ::mkdtemp(tmpl);
  write(d / "hello", "hello\n");
  write(d / "empty", "");
  EXPECT_EQ(emo::git_blob_sha1_file((d / "hello").string()), "ce013625030ba8dba906f756967f9e9ca394464a");  // git hash-object
  EXPECT_EQ(emo::git_blob_sha1_file((d / "empty").string()), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  EXPECT_EQ(emo::sha256_file((d / "hello").string()), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  EXPECT_THROW(emo::sha256_file((d / "missing").string()), emo::InputError);
  fs::remove_all(d);
}

TEST(HubGlob, MatchesLikeAllowPatterns) {
  EXPECT_TRUE(emo::hub_glob_match("hallo/", "hallo/net.pth"));
  EXPECT_TRUE(emo::hub_glob_match("hallo/*", "hallo/net.pth"));
  EXPECT_TRUE(emo::hub_glob_match("*.json", "stable-diffusion-v1-5/unet/config.json"));  // '*' crosses '/'
  EXPECT_TRUE(emo::hub_glob_match("wav2vec/*", "wav2vec/wav2vec2-base-960h/model.safetensors"));
  EXPECT_FALSE(emo::hub_glob_match("wav2vec/*", "hallo/net.pth"));
  EXPECT_FALSE(emo::hub_glob_match("hallo", "hallo/net.pth"));
  EXPECT_EQ(emo::hub_part_path("d/net.pth", {"net.pth", 1, std::string(64, 'a'), ""}), "d/net.pth.part-aaaaaaaaaaaaaaaa");
}

TEST_F(HubDownload, ListsTheRepositoryWithSizesAndHashes) {
  auto l = emo::list_hub_repo(options());
  EXPECT_EQ(l.commit, "0123456789abcdef0123456789abcdef01234567");
  ASSERT_EQ(l.files.size(), 4u);
  EXPECT_EQ(l.files[0].path, "hallo/net.pth");
  EXPECT_EQ(l.files[0].size, kNet.size());
  EXPECT_EQ(l.files[0].sha256, emo::sha256_hex(kNet));
  EXPECT_EQ(l.files[2].path, "stable-diffusion-v1-5/unet/config.json");
  EXPECT_TRUE(l.files[2].sha256.empty());
  EXPECT_EQ(l.files[2].git_oid, emo::sha1_hex("blob " + std::to_string(kConfig.size()) + std::string(1, '\0') + kConfig));
}

TEST_F(HubDownload, TreeListingIsFollowedAcrossPages) {
  server_.set_page_size(2);
  auto l = emo::list_hub_repo(options());
  EXPECT_EQ(l.files.size(), 4u);
  EXPECT_GE(server_.count("cursor="), 2u);
}

TEST_F(HubDownload, FullDownloadFollowsRedirectsAndVerifies) {
  std::vector<emo::DownloadProgress> seen;
  auto o = options();
  o.progress = [&](const emo::DownloadProgress& p) { seen.push_back(p); };
  auto r = emo::download_hub_repo(o);
  expect_all_files();
  EXPECT_EQ(r.fetched.size(), 4u);
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_EQ(r.bytes_transferred, kNet.size() + kVae.size() + kConfig.size() + kVocab.size());
  EXPECT_EQ(server_.count("/cdn-lfs/"), 2u);                            // both LFS files through the 302
  EXPECT_EQ(server_.count("/resolve/0123456789abcdef"), 4u);            // pinned to the listed commit
  EXPECT_EQ(server_.count("/resolve/0123456789abcdef0123456789abcdef01234567/wav2vec/vocab%20file.json"), 1u);
  for (const auto& rq : server_.requests()) EXPECT_TRUE(rq.authorization.empty()) << rq.target;
  EXPECT_TRUE(fs::exists(dir_ / emo::kDownloadRecordName));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().done, seen.back().total);
  EXPECT_EQ(seen.back().total, r.bytes_transferred);
}

TEST_F(HubDownload, RerunSkipsVerifiedFilesWithoutTransfers) {
  emo::download_hub_repo(options());
  server_.clear_requests();
  auto r = emo::download_hub_repo(options());
  EXPECT_EQ(r.skipped.size(), 4u);
  EXPECT_TRUE(r.fetched.empty());
  EXPECT_EQ(server_.count("/resolve/"), 0u);
  // Without the record (e.g. files fetched by git-lfs), present files are hashed once and kept.
  fs::remove(dir_ / emo::kDownloadRecordName);
  r = emo::download_hub_repo(options());
  EXPECT_EQ(r.skipped.size(), 4u);
  EXPECT_EQ(server_.count("/resolve/"), 0u);
  EXPECT_TRUE(fs::exists(dir_ / emo::kDownloadRecordName));
}

TEST_F(HubDownload, DroppedConnectionIsResumedWithRange) {
  server_.cut_after("hallo/net.pth", 100000);
  auto r = emo::download_hub_repo(options());
  expect_all_files();
  EXPECT_EQ(r.bytes_transferred, kNet.size() + kVae.size() + kConfig.size() + kVocab.size());  // nothing twice
  EXPECT_EQ(server_.count_ranged("/cdn-lfs/" + emo::sha256_hex(kNet)), 1u);
  bool saw = false;
  for (const auto& rq : server_.requests()) saw |= rq.range == "bytes=100000-";
  EXPECT_TRUE(saw);
}

TEST_F(HubDownload, InterruptedRunLeavesPartAndTheNextRunResumesIt) {
  server_.cut_after("hallo/net.pth", 120000);
  auto o = options();
  o.retries = 0;
  auto e = expect_throw<emo::NetworkError>(o);
  EXPECT_EQ(e.code(), emo::ExitCode::kNetwork);
  EXPECT_NE(std::string(e.what()).find("hallo/net.pth"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(dir_ / "hallo/net.pth"));
  const fs::path part = emo::hub_part_path((dir_ / "hallo/net.pth").string(), {"hallo/net.pth", kNet.size(), emo::sha256_hex(kNet), ""});
  ASSERT_TRUE(fs::exists(part));
  EXPECT_EQ(fs::file_size(part), 120000u);
  server_.clear_requests();
  emo::download_hub_repo(options());
  expect_all_files();
  EXPECT_EQ(server_.count_ranged("/cdn-lfs/" + emo::sha256_hex(kNet)), 1u);
}

TEST_F(HubDownload, ServerThatIgnoresRangeRestartsTheFile) {
  const auto f = emo::HubFile{"hallo/net.pth", kNet.size(), emo::sha256_hex(kNet), ""};
  write(emo::hub_part_path((dir_ / "hallo/net.pth").string(), f), kNet.substr(0, 5000));
  server_.ignore_range(true);
  emo::download_hub_repo(options());
  expect_all_files();
}

TEST_F(HubDownload, CorruptPartialFileIsFetchedAgainFromTheStart) {
  const auto f = emo::HubFile{"hallo/net.pth", kNet.size(), emo::sha256_hex(kNet), ""};
  write(emo::hub_part_path((dir_ / "hallo/net.pth").string(), f), std::string(5000, 'x'));  // not a prefix of the file
  emo::download_hub_repo(options());
  expect_all_files();
  EXPECT_EQ(server_.count("/cdn-lfs/" + emo::sha256_hex(kNet)), 2u);  // the resumed try, then a full one
}

TEST_F(HubDownload, ChecksumMismatchLeavesNothingUnderTheFinalName) {
  server_.corrupt("hallo/net.pth");
  auto e = expect_throw<emo::ChecksumError>(options());
  EXPECT_EQ(e.code(), emo::ExitCode::kChecksum);
  EXPECT_NE(std::string(e.what()).find("hallo/net.pth"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(emo::sha256_hex(kNet)), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(dir_ / "hallo/net.pth"));
  EXPECT_TRUE(leftovers(dir_).empty());
  // The other files were still fetched and verified.
  EXPECT_EQ(read(dir_ / "stable-diffusion-v1-5/unet/config.json"), kConfig);
}

TEST_F(HubDownload, ChecksumMismatchNeverReplacesTheLocalFile) {
  emo::download_hub_repo(options());
  const std::string v2 = bytes(kNet.size() + 10, 99);  // upstream publishes a new version...
  server_.replace_content("hallo/net.pth", v2);
  server_.corrupt("hallo/net.pth");                       // ...but the bytes arrive damaged
  auto e = expect_throw<emo::ChecksumError>(options());
  EXPECT_EQ(read(dir_ / "hallo/net.pth"), kNet);          // the old, verified file is untouched
  EXPECT_TRUE(leftovers(dir_).empty());
  server_.corrupt("hallo/net.pth", false);
  auto r = emo::download_hub_repo(options());
  EXPECT_EQ(read(dir_ / "hallo/net.pth"), v2);
  EXPECT_EQ(r.refetched, std::vector<std::string>{"hallo/net.pth"});
}

TEST_F(HubDownload, LocalFileThatFailsVerificationIsFetchedAgain) {
  emo::download_hub_repo(options());
  std::string damaged = kNet;
  damaged[1234] ^= 1;  // same size: only the hash can tell
  write(dir_ / "hallo/net.pth", damaged);
  std::string damaged_cfg = kConfig;
  damaged_cfg[3] = 'X';
  write(dir_ / "stable-diffusion-v1-5/unet/config.json", damaged_cfg);
  auto r = emo::download_hub_repo(options());
  EXPECT_EQ(r.refetched.size(), 2u);
  expect_all_files();
}

TEST_F(HubDownload, VerifyExistingRehashesEvenWhenTheRecordMatches) {
  emo::download_hub_repo(options());
  // Damage a file and restore its mtime, so the record alone would call it verified.
  struct stat st {};
  const auto p = (dir_ / "hallo/net.pth").string();
  ::stat(p.c_str(), &st);
  std::string damaged = kNet;
  damaged[10] ^= 1;
  write(p, damaged);
  timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, p.c_str(), times, 0);
  auto r = emo::download_hub_repo(options());
  EXPECT_EQ(r.skipped.size(), 4u);  // the cheap path trusts the record
  auto o = options();
  o.verify_existing = true;
  r = emo::download_hub_repo(o);
  EXPECT_EQ(r.refetched, std::vector<std::string>{"hallo/net.pth"});
  expect_all_files();
}

TEST_F(HubDownload, UnknownRepositoryRevisionAndFileAre404) {
  auto o = options();
  o.repo = "org/missing";
  auto e = expect_throw<emo::NotFoundError>(o);
  EXPECT_EQ(e.code(), emo::ExitCode::kNotFound);
  EXPECT_NE(std::string(e.what()).find("org/missing"), std::string::npos) << e.what();
  o = options();
  o.revision = "v9.9";
  e = expect_throw<emo::NotFoundError>(o);
  EXPECT_NE(std::string(e.what()).find("revision 'v9.9'"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(HubDownload, PrivateRepositoryNeedsTheToken) {
  auto repo = weights_repo("org/private");
  repo.token = "hf_secret";
  server_.add_repo(repo);
  auto o = options();
  o.repo = "org/private";
  auto e = expect_throw<emo::AuthError>(o);
  EXPECT_EQ(e.code(), emo::ExitCode::kAuth);
  EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos) << e.what();
  ::setenv("HF_TOKEN", "hf_wrong", 1);
  e = expect_throw<emo::AuthError>(o);
  EXPECT_NE(std::string(e.what()).find("rejected"), std::string::npos) << e.what();
  ::setenv("HF_TOKEN", "hf_secret", 1);
  server_.clear_requests();
  emo::download_hub_repo(o);
  expect_all_files();
  for (const auto& rq : server_.requests()) EXPECT_EQ(rq.authorization, "Bearer hf_secret") << rq.target;
  ::unsetenv("HF_TOKEN");
}

TEST_F(HubDownload, TokenIsNotForwardedToAnotherHostOnRedirect) {
  auto repo = weights_repo("org/private");
  repo.token = "hf_secret";
  server_.add_repo(repo);
  server_.set_cdn_host("localhost");  // the LFS redirect leaves 127.0.0.1 for another host name
  auto o = options();
  o.repo = "org/private";
  o.token = "hf_secret";
  emo::download_hub_repo(o);
  expect_all_files();
  size_t cdn = 0;
  for (const auto& rq : server_.requests()) {
    if (rq.target.rfind("/cdn-lfs/", 0) == 0) {
      ++cdn;
      EXPECT_TRUE(rq.authorization.empty()) << "token leaked to the CDN host: " << rq.target;
    } else {
      EXPECT_EQ(rq.authorization, "Bearer hf_secret") << rq.target;
    }
  }
  EXPECT_EQ(cdn, 2u);
}

TEST_F(HubDownload, MirrorEndpointFromHfEndpoint) {
  FakeHubServer mirror("/hf-mirror");
  mirror.add_repo(weights_repo());
  ::setenv("HF_ENDPOINT", (mirror.endpoint() + "/").c_str(), 1);
  auto o = options();
  o.endpoint.clear();
  emo::download_hub_repo(o);
  ::unsetenv("HF_ENDPOINT");
  expect_all_files();
  EXPECT_EQ(server_.requests().size(), 0u);  // the default endpoint was never asked
  EXPECT_EQ(mirror.count("/hf-mirror/api/models/org/weights/revision/main"), 1u);
  EXPECT_EQ(mirror.count("/hf-mirror/org/weights/resolve/"), 4u);
}

TEST_F(HubDownload, NoNetworkIsANetworkError) {
  auto o = options();
  o.endpoint = emo::test::unreachable_endpoint();
  o.retries = 1;
  auto e = expect_throw<emo::NetworkError>(o);
  EXPECT_EQ(e.code(), emo::ExitCode::kNetwork);
  EXPECT_NE(std::string(e.what()).find("no network?"), std::string::npos) << e.what();
}

TEST_F(HubDownload, NotEnoughDiskSpaceFailsBeforeAnyTransfer) {
  server_.set_listed_size("hallo/net.pth", uint64_t{1} << 60);  // an exabyte
  auto e = expect_throw<emo::OutputError>(options());
  EXPECT_EQ(e.code(), emo::ExitCode::kOutput);
  EXPECT_NE(std::string(e.what()).find("not enough disk space"), std::string::npos) << e.what();
  EXPECT_EQ(server_.count("/resolve/"), 0u);
}

TEST_F(HubDownload, IncludeSelectsFiles) {
  auto o = options();
  o.include = {"hallo/", "*.json"};
  auto r = emo::download_hub_repo(o);
  EXPECT_EQ(r.fetched, (std::vector<std::string>{"hallo/net.pth", "stable-diffusion-v1-5/unet/config.json", "wav2vec/vocab file.json"}));
  EXPECT_FALSE(fs::exists(dir_ / "sd-vae-ft-mse"));
  o.include = {"nothing/*"};
  EXPECT_THROW(emo::download_hub_repo(o), emo::UsageError);
}

TEST_F(HubDownload, UnsafePathsInTheListingAreRefused) {
  FakeHubRepo evil;
  evil.id = "org/evil";
  evil.files = {{"../escaped.txt", "x", false}};
  server_.add_repo(evil);
  auto o = options();
  o.repo = "org/evil";
  EXPECT_THROW(emo::download_hub_repo(o), emo::ModelError);
  EXPECT_FALSE(fs::exists(root_ / "escaped.txt"));
}

TEST_F(HubDownload, CancellationKeepsThePartFile) {
  std::atomic<bool> cancel{false};
  auto o = options();
  o.cancel = &cancel;
  o.progress = [&](const emo::DownloadProgress& p) {
    if (p.file == "hallo/net.pth") cancel = true;  // as if Ctrl-C came while it transfers
  };
  try {
    emo::download_hub_repo(o);
    ADD_FAILURE() << "not interrupted";
  } catch (const emo::Error& e) {
    EXPECT_EQ(e.code(), emo::ExitCode::kInterrupted) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "hallo/net.pth"));
  EXPECT_EQ(leftovers(dir_).size(), 1u);
  emo::download_hub_repo(options());
  expect_all_files();
}

}  // namespace emo::hub_download_test
