// SPDX-License-Identifier: Apache-2.0
// Helpers for the dkim tests: keys made at test time with the openssl CLI (cached in the
// build tree), and an independent verifier, Debian's python3-dkim, run as a child process with
// the key record served by a dnsfunc instead of DNS.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.h"

namespace salvo::dkim::test {

inline constexpr char kPython[] = "/usr/bin/python3";
inline constexpr char kOpenssl[] = "/usr/bin/openssl";

inline void write_file(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Runs argv to completion (bounded); returns its exit status, stdout and stderr.
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
inline RunResult run(const std::vector<std::string>& argv, const std::string& work) {
  salvo::test::Process p(argv, work);
  RunResult r;
  r.status = p.wait(std::chrono::seconds(120)).value_or(-1);
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

// PEM private keys, generated once per process.
struct Keys {
  std::string rsa2048;        // PKCS#8 "PRIVATE KEY"
  std::string rsa2048_pkcs1;  // the same key as "RSA PRIVATE KEY"
  std::string rsa2048_other;  // a second, unrelated RSA key
  std::string ed25519;        // PKCS#8
  std::string rsa512;         // too small for DKIM
  std::string rsa_encrypted;  // "ENCRYPTED PRIVATE KEY"
  std::string ec_p256;        // a key type DKIM does not use
};

// Keys live in the build tree once made, so the one-process-per-test runs of ctest do not
// each wait for RSA key generation: made by the first run (to a temporary name, then linked,
// so parallel runs never read half a file or disagree), reused by the rest. Delete the folder for
// new keys.
inline std::string key_dir() {
  std::string dir = SALVO_BINARY_DIR;
  dir += "/test-keys/dkim";
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string openssl_key(const std::string& name, std::vector<std::string> args) {
  const std::string path = key_dir() + "/" + name;
  std::string pem = salvo::test::read_file(path);
  if (!pem.empty()) return pem;
  salvo::test::TempDir tmp;
  std::vector<std::string> argv = {kOpenssl};
  for (std::string& a : args) {
    if (a.starts_with("@")) a = key_dir() + "/" + a.substr(1);  // another key of ours
  }
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("-out");
  argv.push_back(tmp.file(name));
  RunResult r = run(argv, tmp.path());
  if (r.status != 0) ADD_FAILURE() << "openssl " << args[0] << " failed: " << r.err;
  pem = salvo::test::read_file(tmp.file(name));
  // Publish with link(), which fails if another run got there first: then use theirs.
  const std::string staged = path + ".tmp" + std::to_string(::getpid());
  write_file(staged, pem);
  std::error_code ec;
  std::filesystem::create_hard_link(staged, path, ec);
  std::filesystem::remove(staged, ec);
  return salvo::test::read_file(path);
}

inline const Keys& keys() {
  static const Keys k = [] {
    Keys out;
    const std::vector<std::string> rsa2048 = {"genpkey", "-algorithm", "RSA", "-pkeyopt",
                                              "rsa_keygen_bits:2048"};
    out.rsa2048 = openssl_key("rsa.pem", rsa2048);
    out.rsa2048_pkcs1 = openssl_key("rsa1.pem", {"pkey", "-in", "@rsa.pem", "-traditional"});
    out.rsa2048_other = openssl_key("rsa2.pem", rsa2048);
    out.ed25519 = openssl_key("ed.pem", {"genpkey", "-algorithm", "ed25519"});
    out.rsa512 = openssl_key("rsa512.pem",
                             {"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"});
    out.rsa_encrypted =
        openssl_key("enc.pem", {"pkey", "-in", "@rsa.pem", "-aes256", "-passout", "pass:secret"});
    out.ec_p256 = openssl_key(
        "ec.pem", {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"});
    return out;
  }();
  return k;
}

// The verifier: prints PASS or FAIL and exits 0 only on PASS; the library's debug log goes
// to stderr for the failure message.
inline constexpr char kVerifyScript[] = R"PY(
import logging, sys
import dkim
msg = open(sys.argv[1], 'rb').read()
record = open(sys.argv[2], 'rb').read()
want = sys.argv[3]
asked = []
def dns(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    asked.append(n)
    return record if n.rstrip('.') == want else None
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
ok = dkim.verify(msg, logger=logging.getLogger('dkimpy'), dnsfunc=dns)
print('PASS' if ok else 'FAIL', asked)
sys.exit(0 if ok else 1)
)PY";

struct Verification {
  bool pass = false;
  std::string log;  // verifier output, for failure messages
};

inline Verification python_verify(std::string_view message, std::string_view record,
                                  std::string_view record_name) {
  salvo::test::TempDir dir;
  write_file(dir.file("verify.py"), kVerifyScript);
  write_file(dir.file("message.eml"), message);
  write_file(dir.file("record.txt"), record);
  RunResult r = run({kPython, dir.file("verify.py"), dir.file("message.eml"),
                     dir.file("record.txt"), std::string(record_name)},
                    dir.path());
  Verification v;
  v.pass = r.status == 0 && r.out.starts_with("PASS");
  v.log = "exit ";
  v.log += std::to_string(r.status);
  v.log += '\n';
  v.log += r.out;
  v.log += r.err;
  return v;
}

}  // namespace salvo::dkim::test
