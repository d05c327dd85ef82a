// SPDX-License-Identifier: Apache-2.0
// CertFactory: runs `openssl` with posix_spawnp and an argv vector (no shell, no string
// splicing), output to a log file in the temp dir so failures can be reported in one line.
#include "support/cert_factory.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

extern char** environ;

namespace salvo::test {
namespace {

std::string read_tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > 300) s = s.substr(s.size() - 300);
  for (char& ch : s) {
    if (ch == '\n') ch = ' ';
  }
  return s;
}

}  // namespace

CertFactory::CertFactory() {
  std::error_code ec;
  auto base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string templ = (base / "salvo-certs-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = templ;
  ca_key_ = dir_ + "/ca.key";
  ca_cert_ = dir_ + "/ca.pem";
  server_key_ = dir_ + "/server.key";
  server_cert_ = dir_ + "/server.pem";
  other_ca_key_ = dir_ + "/other-ca.key";
  other_ca_cert_ = dir_ + "/other-ca.pem";
  if (!make_ca("salvo test CA", ca_key_, ca_cert_)) return;
  if (!make_server()) return;
  make_ca("salvo unrelated CA", other_ca_key_, other_ca_cert_);
}

CertFactory::~CertFactory() {
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

const CertFactory& CertFactory::shared() {
  static const CertFactory instance;
  return instance;
}

bool CertFactory::make_ca(const std::string& name, const std::string& key,
                          const std::string& cert) {
  return run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", key, "-out", cert, "-days", "3", "-subj", "/CN=" + name, "-addext",
              "basicConstraints=critical,CA:TRUE", "-addext",
              "keyUsage=critical,keyCertSign,cRLSign"});
}

bool CertFactory::make_server() {
  std::string csr = dir_ + "/server.csr";
  std::string ext = dir_ + "/server.ext";
  {
    std::ofstream out(ext);
    out << "basicConstraints=CA:FALSE\n"
           "keyUsage=critical,digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    if (!out) {
      error_ = "cannot write " + ext;
      return false;
    }
  }
  if (!run({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", server_key_, "-out", csr, "-subj", "/CN=localhost"})) {
    return false;
  }
  return run({"x509", "-req", "-in", csr, "-CA", ca_cert_, "-CAkey", ca_key_, "-set_serial",
              "4242", "-days", "3", "-sha256", "-extfile", ext, "-out", server_cert_});
}

bool CertFactory::run(const std::initializer_list<std::string>& args) {
  std::vector<std::string> storage;
  storage.emplace_back("openssl");
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::string log = dir_ + "/openssl.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "openssl", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    error_ = "cannot run openssl: " + std::system_category().message(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      error_ = "waitpid failed";
      return false;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error_ = "openssl " + storage[1] + " failed: " + read_tail(log);
    return false;
  }
  return true;
}

}  // namespace salvo::test
