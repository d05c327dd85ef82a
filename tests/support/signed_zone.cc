// SPDX-License-Identifier: Apache-2.0
// SignedZone: zone file, key, signature and DS through ldnsutils; openssl digests via popen.
#include "support/signed_zone.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>

namespace salvo::test {
namespace {

using namespace std::chrono_literals;

std::string output_of(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) return {};
  return out;
}

}  // namespace

SignedZone::SignedZone(std::string zone, const std::vector<std::string>& records)
    : zone_(std::move(zone)) {
  if (::access(kKeygen, X_OK) != 0 || ::access(kSignzone, X_OK) != 0) {
    error_ = "ldns-keygen/ldns-signzone missing: run tools/install_deps.sh (Debian: ldnsutils)";
    return;
  }
  const std::string plain = dir_.file("zone");
  {
    std::ofstream out(plain);
    out << zone_ << " 300 IN SOA ns." << zone_ << " hostmaster." << zone_
        << " 1 3600 900 604800 60\n"
        << zone_ << " 300 IN NS ns." << zone_ << "\n"
        << "ns." << zone_ << " 300 IN A 127.0.0.1\n";
    for (const auto& r : records) out << r << "\n";
  }
  // ldns-keygen writes .key, .private and .ds into its working directory and prints their
  // base name (Kzone.+013+id).
  std::string base;
  if (!run({"/bin/sh", "-c",
            "cd '" + dir_.path() + "' && " + kKeygen + " -a ECDSAP256SHA256 -k " + zone_},
           &base)) {
    return;
  }
  while (!base.empty() && (base.back() == '\n' || base.back() == '\r')) base.pop_back();
  base = dir_.file(base);
  if (!run({kSignzone, "-f", dir_.file("zone.signed"), plain, base}, nullptr)) return;
  signed_file_ = dir_.file("zone.signed");
  ds_file_ = base + ".ds";
}

bool SignedZone::break_signature(const std::string& owner, const std::string& type) {
  std::ifstream in(signed_file_);
  std::string line, text;
  bool changed = false;
  while (std::getline(in, line)) {
    // ldns-signzone writes "owner<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata".
    if (line.rfind(owner + "\t", 0) == 0 && line.find("\tIN\t" + type + "\t") != std::string::npos &&
        !line.empty()) {
      char& last = line.back();
      last = last == '0' ? '1' : '0';
      changed = true;
    }
    text += line + "\n";
  }
  in.close();
  std::ofstream(signed_file_, std::ios::trunc) << text;
  return changed;
}

bool SignedZone::run(const std::vector<std::string>& argv, std::string* out) {
  Process p(argv, dir_.path());
  const auto status = p.wait(10000ms);
  if (!status || *status != 0) {
    error_ = argv[0] + " failed: " + p.stderr_text();
    return false;
  }
  if (out != nullptr) *out = p.stdout_text();
  return true;
}

std::string openssl_tlsa_data(const std::string& pem, int selector, const std::string& digest) {
  std::string command = selector == 0 ? "openssl x509 -in '" + pem + "' -outform DER"
                                      : "openssl x509 -in '" + pem +
                                            "' -pubkey -noout | openssl pkey -pubin -outform DER";
  if (!digest.empty()) command += " | openssl dgst -" + digest + " -binary";
  return output_of(command);
}

std::string to_hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

}  // namespace salvo::test
