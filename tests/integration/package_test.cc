// SPDX-License-Identifier: Apache-2.0
// The Debian package (tools/cmake/Packaging.cmake): the .deb that `cmake --build build
// --target package` writes into the build directory is unpacked into a scratch root with
// dpkg-deb -x / -e and checked: the programs are executable ELF files that run from there,
// the reference config is a conffile, the systemd unit is there with its hardening (and
// passes systemd-analyze verify when systemd is installed), the spool and log directories
// exist, the maintainer scripts create the salvo user (run against stub tools, never the
// real system), and Depends lists the shared libraries.
//
// tools/test.sh builds the package right after the Release build; when the .deb is missing
// or older than what goes into it (ctest run by hand), the test builds it itself.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "support/process.h"

namespace salvo::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Result {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a full path) to completion within `timeout`; status -1 on timeout.
Result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 60s) {
  TempDir work;
  Process p(argv, work.path());
  auto st = p.wait(timeout);
  Result r;
  r.status = st ? *st : -1;
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

// A program on PATH, as a full path ("" if none).
std::string which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    fs::path p = fs::path(dir) / name;
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// Programs the package carries: the four always built, salvoctl once it exists.
std::vector<std::string> programs() {
  std::vector<std::string> v{"salvod", "salvo-sink", "salvo-blast", "spool-dump"};
  if (fs::exists(program_path("salvoctl"))) v.push_back("salvoctl");
  return v;
}

// The newest salvo_*.deb in the build directory, or "".
std::string newest_deb() {
  std::string best;
  fs::file_time_type best_time{};
  for (const auto& e : fs::directory_iterator(SALVO_BINARY_DIR)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.rfind("salvo_", 0) == 0 && n.ends_with(".deb") &&
        (best.empty() || e.last_write_time() > best_time)) {
      best = e.path().string();
      best_time = e.last_write_time();
    }
  }
  return best;
}

// True when some input of the package is newer than `deb`.
bool stale(const std::string& deb) {
  std::vector<std::string> inputs;
  for (const auto& p : programs()) inputs.push_back(program_path(p));
  for (const char* s : {"configs/salvo.toml", "configs/salvod.service", "tools/packaging/postinst",
                        "tools/packaging/prerm", "tools/packaging/postrm",
                        "tools/cmake/Packaging.cmake"}) {
    inputs.push_back(std::string(SALVO_SOURCE_DIR) + "/" + s);
  }
  const auto t = fs::last_write_time(deb);
  return std::any_of(inputs.begin(), inputs.end(), [&](const std::string& f) {
    return fs::exists(f) && fs::last_write_time(f) > t;
  });
}

// The current .deb, built here if needed. Test processes run in parallel (ctest -j), so
// the check-and-build happens under a lock in the build directory.
std::string ensure_deb() {
  const std::string lock_path = std::string(SALVO_BINARY_DIR) + "/.package_test.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + lock_path);
  std::string deb = newest_deb();
  std::string error;
  if (deb.empty() || stale(deb)) {
    const std::string cmake = which("cmake");
    if (cmake.empty()) {
      error = "cmake not on PATH";
    } else {
      Result r = run({cmake, "--build", SALVO_BINARY_DIR, "--target", "package"}, 240s);
      deb = newest_deb();
      if (r.status != 0 || deb.empty()) {
        error = "cmake --build --target package failed (status " + std::to_string(r.status) +
                "):\n" + r.out + r.err;
      }
    }
  }
  ::close(fd);
  if (!error.empty()) throw std::runtime_error(error);
  return deb;
}

std::string slurp(const fs::path& p) { return read_file(p.string()); }

class PackageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new TempDir();
    root_ = new fs::path(fs::path(scratch_->path()) / "root");
    control_ = new fs::path(fs::path(scratch_->path()) / "DEBIAN");
    try {
      deb_ = new std::string(ensure_deb());
    } catch (const std::exception& e) {
      error_ = new std::string(e.what());
      return;
    }
    Result x = run({which("dpkg-deb"), "-x", *deb_, root_->string()});
    Result e = run({which("dpkg-deb"), "-e", *deb_, control_->string()});
    if (x.status != 0 || e.status != 0) error_ = new std::string("dpkg-deb: " + x.err + e.err);
  }
  void SetUp() override { ASSERT_EQ(error_, nullptr) << *error_; }
  static void TearDownTestSuite() {
    delete control_;
    delete root_;
    delete scratch_;
    delete deb_;
    delete error_;
  }

  static std::string field(const std::string& name) {
    Result r = run({which("dpkg-deb"), "-f", *deb_, name});
    EXPECT_EQ(r.status, 0) << r.err;
    std::string v = r.out;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v;
  }

  static inline std::string* deb_ = nullptr;
  static inline TempDir* scratch_ = nullptr;
  static inline fs::path* root_ = nullptr;
  static inline fs::path* control_ = nullptr;
  static inline std::string* error_ = nullptr;  // why set-up failed
};

TEST_F(PackageTest, FileNameAndControlFields) {
  EXPECT_EQ(field("Package"), "salvo");
  const std::string version = field("Version");
  const std::string arch = field("Architecture");
  EXPECT_FALSE(version.empty());
  EXPECT_FALSE(arch.empty());
  EXPECT_EQ(fs::path(*deb_).filename().string(), "salvo_" + version + "_" + arch + ".deb");
  EXPECT_FALSE(field("Maintainer").empty());
  EXPECT_FALSE(field("Description").empty());
  EXPECT_EQ(field("Section"), "mail");
  // Depends: what dpkg-shlibdeps found for the binaries, plus adduser for postinst.
  const std::string depends = field("Depends");
  ASSERT_FALSE(depends.empty());
  for (const char* lib : {"libc6", "libstdc++6", "liburing", "libwolfssl", "libldns", "libidn2",
                          "adduser"}) {
    EXPECT_NE(depends.find(lib), std::string::npos) << lib << " missing from: " << depends;
  }
  // mimalloc is linked into the programs except in sanitizer builds (tools/test.sh packages
  // those too in its ASan stage), which bring their own allocator.
  const bool sanitized = depends.find("libasan") != std::string::npos;
  EXPECT_EQ(depends.find("libmimalloc") != std::string::npos, !sanitized) << depends;
}

TEST_F(PackageTest, HoldsExactlyTheExpectedFiles) {
  std::set<std::string> expected{"/etc/salvo/salvo.toml", "/lib/systemd/system/salvod.service"};
  for (const auto& p : programs()) expected.insert("/usr/bin/" + p);
  std::set<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(*root_)) {
    if (!e.is_directory()) found.insert("/" + fs::relative(e.path(), *root_).string());
  }
  EXPECT_EQ(found, expected);
}

TEST_F(PackageTest, ProgramsAreExecutableElfFiles) {
  for (const auto& p : programs()) {
    const fs::path bin = *root_ / "usr/bin" / p;
    ASSERT_TRUE(fs::is_regular_file(bin)) << bin;
    const auto perms = fs::status(bin).permissions();
    EXPECT_NE(perms & fs::perms::owner_exec, fs::perms::none) << bin;
    EXPECT_NE(perms & fs::perms::others_exec, fs::perms::none) << bin;
    EXPECT_EQ(slurp(bin).substr(0, 4), std::string("\x7f" "ELF")) << bin;
  }
}

// The binaries link only system libraries, so they run straight from the scratch root.
TEST_F(PackageTest, ProgramsRunFromTheExtractedTree) {
  for (const auto& p : programs()) {
    Result r = run({(*root_ / "usr/bin" / p).string(), "--help"}, 30s);
    EXPECT_EQ(r.status, 0) << p << ": " << r.err;
    EXPECT_NE((r.out + r.err).find("--"), std::string::npos) << p << " printed no usage";
  }
  Result r = run({(*root_ / "usr/bin/salvod").string(), "--help"}, 30s);
  EXPECT_NE(r.out.find("--config"), std::string::npos) << r.out;
}

TEST_F(PackageTest, ReferenceConfigIsAConffile) {
  const std::string conffiles = slurp(*control_ / "conffiles");
  EXPECT_NE(conffiles.find("/etc/salvo/salvo.toml\n"), std::string::npos) << conffiles;
  EXPECT_EQ(slurp(*root_ / "etc/salvo/salvo.toml"),
            read_file(std::string(SALVO_SOURCE_DIR) + "/configs/salvo.toml"));
  const auto perms = fs::status(*root_ / "etc/salvo/salvo.toml").permissions();
  EXPECT_NE(perms & fs::perms::others_read, fs::perms::none);
  EXPECT_EQ(perms & fs::perms::others_write, fs::perms::none);
}

TEST_F(PackageTest, SpoolAndLogDirectoriesExist) {
  EXPECT_TRUE(fs::is_directory(*root_ / "var/spool/salvo"));
  EXPECT_TRUE(fs::is_directory(*root_ / "var/log/salvo"));
}

// Key=value lines of a unit file (comments and section headers left out).
std::multimap<std::string, std::string> unit_keys(const std::string& text) {
  std::multimap<std::string, std::string> keys;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos) keys.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return keys;
}

TEST_F(PackageTest, UnitRunsSalvodHardened) {
  const fs::path unit = *root_ / "lib/systemd/system/salvod.service";
  ASSERT_TRUE(fs::is_regular_file(unit));
  const std::string text = slurp(unit);
  EXPECT_EQ(text, read_file(std::string(SALVO_SOURCE_DIR) + "/configs/salvod.service"));
  const auto keys = unit_keys(text);
  const std::map<std::string, std::string> want{
      {"ExecStart", "/usr/bin/salvod --config /etc/salvo/salvo.toml"},
      {"Type", "simple"},
      {"User", "salvo"},
      {"Group", "salvo"},
      {"Restart", "on-failure"},
      {"ExecReload", "/bin/kill -HUP $MAINPID"},
      {"KillSignal", "SIGTERM"},
      {"TimeoutStopSec", "60"},
      {"ProtectSystem", "strict"},
      {"ProtectHome", "yes"},
      {"PrivateTmp", "yes"},
      {"PrivateDevices", "yes"},
      {"NoNewPrivileges", "yes"},
      {"ProtectKernelTunables", "yes"},
      {"ProtectKernelModules", "yes"},
      {"ProtectKernelLogs", "yes"},
      {"ProtectControlGroups", "yes"},
      {"RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
      {"RestrictNamespaces", "yes"},
      {"LockPersonality", "yes"},
      {"MemoryDenyWriteExecute", "yes"},
      {"LimitNOFILE", "1048576"},
      {"LimitMEMLOCK", "infinity"},
      {"AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
      {"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
      {"LogsDirectory", "salvo"},
      {"RuntimeDirectory", "salvo"},
      {"WantedBy", "multi-user.target"},
  };
  for (const auto& [k, v] : want) {
    auto [lo, hi] = keys.equal_range(k);
    ASSERT_EQ(std::distance(lo, hi), 1) << k << " must be set exactly once";
    EXPECT_EQ(lo->second, v) << k;
  }
  auto rw = keys.find("ReadWritePaths");
  ASSERT_NE(rw, keys.end());
  EXPECT_NE(rw->second.find("/var/spool/salvo"), std::string::npos) << rw->second;
  // io_uring_setup/enter/register must not be filtered out.
  EXPECT_EQ(keys.count("SystemCallFilter"), 0u);
}

// systemd-analyze verify against the unpacked tree (so ExecStart's /usr/bin/salvod is the
// packaged one), with the host's own units for the targets the unit names.
TEST_F(PackageTest, UnitPassesSystemdAnalyzeVerify) {
  const std::string analyze = which("systemd-analyze");
  if (analyze.empty()) GTEST_SKIP() << "systemd-analyze not installed";
  TempDir dir;
  const fs::path vroot = fs::path(dir.path()) / "root";
  fs::copy(*root_, vroot, fs::copy_options::recursive);
  fs::create_directories(vroot / "bin");
  fs::copy_file("/bin/kill", vroot / "bin/kill");  // ExecReload
  for (const auto& e : fs::directory_iterator("/lib/systemd/system")) {
    const fs::path to = vroot / "lib/systemd/system" / e.path().filename();
    if (!fs::exists(to)) fs::copy(e.path(), to, fs::copy_options::copy_symlinks);
  }
  Result r = run({analyze, "verify", "--man=no", "--root=" + vroot.string(), "salvod.service"}, 60s);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("salvod.service"), std::string::npos) << r.err;
}

TEST_F(PackageTest, MaintainerScriptsAreExecutableShellScripts) {
  for (const char* s : {"postinst", "prerm", "postrm"}) {
    const fs::path p = *control_ / s;
    ASSERT_TRUE(fs::is_regular_file(p)) << s;
    const auto perms = fs::status(p).permissions();
    EXPECT_EQ(perms & fs::perms::mask, fs::perms(0755)) << s;
    EXPECT_EQ(slurp(p).rfind("#!/bin/sh\n", 0), 0u) << s;
    Result r = run({"/bin/sh", "-n", p.string()});
    EXPECT_EQ(r.status, 0) << s << ": " << r.err;
  }
  const std::string postinst = slurp(*control_ / "postinst");
  EXPECT_NE(postinst.find("adduser --system"), std::string::npos);
  EXPECT_NE(postinst.find("SALVO_USER=salvo"), std::string::npos);
  EXPECT_NE(postinst.find("/run/systemd/system"), std::string::npos);
}

// Runs the packaged postinst with PATH holding only stubs that log their arguments, so
// nothing on this machine changes. `present` = the salvo user and group already exist;
// `with_adduser` = adduser/addgroup are installed (else useradd/groupadd).
std::string run_postinst_with_stubs(bool present, bool with_adduser, const fs::path& postinst,
                                    int* status) {
  TempDir dir;
  const fs::path stubs = fs::path(dir.path()) / "stubs";
  const fs::path log = fs::path(dir.path()) / "calls.log";
  fs::create_directories(stubs);
  auto stub = [&](const std::string& name, int rc) {
    std::ofstream f(stubs / name);
    f << "#!/bin/sh\necho \"" << name << " $*\" >> " << log.string() << "\nexit " << rc << "\n";
    f.close();
    fs::permissions(stubs / name, fs::perms(0755));
  };
  stub("getent", present ? 0 : 2);
  stub("dpkg-statoverride", 1);  // no override registered
  for (const char* n : {"chown", "chmod", "mkdir", "systemctl"}) stub(n, 0);
  const std::vector<std::string> account_tools =
      with_adduser ? std::vector<std::string>{"adduser", "addgroup"}
                   : std::vector<std::string>{"useradd", "groupadd"};
  for (const auto& n : account_tools) stub(n, 0);
  Result r = run({"/usr/bin/env", "-i", "PATH=" + stubs.string(), "/bin/sh", postinst.string(),
               "configure", ""});
  *status = r.status;
  return read_file(log.string());
}

TEST_F(PackageTest, PostinstCreatesTheSalvoUserAndOwnsTheDirectories) {
  int status = -1;
  const std::string calls = run_postinst_with_stubs(false, true, *control_ / "postinst", &status);
  EXPECT_EQ(status, 0) << calls;
  for (const char* want :
       {"addgroup --system --quiet salvo\n",
        "adduser --system --quiet --ingroup salvo --home /var/spool/salvo --no-create-home "
        "--shell /usr/sbin/nologin --gecos salvo mail delivery daemon salvo\n",
        "chown salvo:salvo /var/spool/salvo\n", "chmod 0750 /var/spool/salvo\n",
        "chown salvo:salvo /var/log/salvo\n", "chmod 0750 /var/log/salvo\n"}) {
    EXPECT_NE(calls.find(want), std::string::npos) << "no call: " << want << "in:\n" << calls;
  }
  // daemon-reload only where systemd runs; here it must not fail either way.
  if (!fs::exists("/run/systemd/system")) {
    EXPECT_EQ(calls.find("systemctl"), std::string::npos) << calls;
  }
}

TEST_F(PackageTest, PostinstIsIdempotentAndFallsBackToUseradd) {
  int status = -1;
  std::string calls = run_postinst_with_stubs(true, true, *control_ / "postinst", &status);
  EXPECT_EQ(status, 0) << calls;
  EXPECT_EQ(calls.find("adduser"), std::string::npos) << calls;
  EXPECT_EQ(calls.find("addgroup"), std::string::npos) << calls;
  EXPECT_NE(calls.find("chown salvo:salvo /var/spool/salvo\n"), std::string::npos) << calls;

  calls = run_postinst_with_stubs(false, false, *control_ / "postinst", &status);
  EXPECT_EQ(status, 0) << calls;
  EXPECT_NE(calls.find("groupadd --system salvo\n"), std::string::npos) << calls;
  EXPECT_NE(calls.find("useradd --system --gid salvo --home-dir /var/spool/salvo "
                       "--no-create-home --shell /usr/sbin/nologin"),
            std::string::npos)
      << calls;
}

}  // namespace
}  // namespace salvo::test
