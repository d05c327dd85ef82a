// SPDX-License-Identifier: Apache-2.0
// CertFactory: test certificates made at run time with the openssl CLI: a CA,
// a "localhost" server certificate it signs (SAN DNS:localhost, IP:127.0.0.1) and an
// unrelated second CA for "wrong CA" tests. Files live in a temp dir removed on destruction.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

namespace salvo::test {

class CertFactory {
 public:
  // Generates everything (P-256 keys; a few hundred ms). Check ok() / error().
  CertFactory();
  ~CertFactory();
  CertFactory(const CertFactory&) = delete;
  CertFactory& operator=(const CertFactory&) = delete;

  // One instance per test binary, made on first use and removed at exit.
  static const CertFactory& shared();

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }

  const std::string& dir() const noexcept { return dir_; }
  const std::string& ca_cert() const noexcept { return ca_cert_; }
  const std::string& ca_key() const noexcept { return ca_key_; }
  const std::string& server_cert() const noexcept { return server_cert_; }
  const std::string& server_key() const noexcept { return server_key_; }
  const std::string& other_ca_cert() const noexcept { return other_ca_cert_; }

  // A server certificate signed by the test CA for `names` (subjectAltName entries:
  // "DNS:mx.a.test", "IP:127.0.0.3"), in DIR/<file>.pem and DIR/<file>.key. Throws
  // std::runtime_error with openssl's output when it cannot be made.
  struct Issued {
    std::string cert, key;
  };
  Issued issue(const std::string& file, const std::vector<std::string>& names) const;

 private:
  bool make_ca(const std::string& name, const std::string& key, const std::string& cert);
  bool make_server();
  bool run(const std::initializer_list<std::string>& args);
  bool sign(const std::vector<std::string>& names, const std::string& key,
            const std::string& cert, std::string& error) const;
  bool run_into(const std::vector<std::string>& args, std::string& error) const;

  std::string dir_;
  std::string error_;
  std::string ca_cert_, ca_key_, server_cert_, server_key_, other_ca_cert_, other_ca_key_;
};

}  // namespace salvo::test
