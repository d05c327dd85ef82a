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
#include <stdexcept>
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
  return sign({"DNS:localhost", "IP:127.0.0.1"}, server_key_, server_cert_, error_);
}

CertFactory::Issued CertFactory::issue(const std::string& file,
                                       const std::vector<std::string>& names) const {
  Issued out{dir_ + "/" + file + ".pem", dir_ + "/" + file + ".key"};
  std::string error;
  if (!sign(names, out.key, out.cert, error)) throw std::runtime_error(error);
  return out;
}

// A P-256 key and a certificate for `names` signed by the test CA; the CN is the first
// name (without its "DNS:" prefix).
bool CertFactory::sign(const std::vector<std::string>& names, const std::string& key,
                       const std::string& cert, std::string& error) const {
  std::string csr = key + ".csr";
  std::string ext = key + ".ext";
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "" : ",") + n;
  {
    std::ofstream out(ext);
    out << "basicConstraints=CA:FALSE\n"
           "keyUsage=critical,digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName="
        << san << "\n";
    if (!out) {
      error = "cannot write " + ext;
      return false;
    }
  }
  std::string cn = names.empty() ? "localhost" : names.front();
  if (cn.starts_with("DNS:") || cn.starts_with("IP:")) cn = cn.substr(cn.find(':') + 1);
  if (!run_into({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=" + cn},
                error)) {
    return false;
  }
  static int serial = 4242;
  return run_into({"x509", "-req", "-in", csr, "-CA", ca_cert_, "-CAkey", ca_key_, "-set_serial",
                   std::to_string(serial++), "-days", "3", "-sha256", "-extfile", ext, "-out",
                   cert},
                  error);
}

bool CertFactory::run(const std::initializer_list<std::string>& args) {
  return run_into(std::vector<std::string>(args), error_);
}

bool CertFactory::run_into(const std::vector<std::string>& args, std::string& error) const {
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
    error = "cannot run openssl: " + std::system_category().message(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      error = "waitpid failed";
      return false;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = "openssl " + storage[1] + " failed: " + read_tail(log);
    return false;
  }
  return true;
}

}  // namespace salvo::test
