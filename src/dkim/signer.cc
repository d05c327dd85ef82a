// SPDX-License-Identifier: Apache-2.0
// Signer: the RFC 6376 §5 signing flow. Body hash over the relaxed body (§3.7), then one
// SHA-256 over the selected header fields (bottom-up per name, §5.4.2) and the new
// DKIM-Signature field with an empty b= (§3.7), signed with the key; the field is built
// folded, so the text hashed is exactly the text sent, minus the b= value.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <utility>

#include <salvo/dkim/signer.h>

#include "dkim/base64.h"
#include "dkim/canon.h"
#include "dkim/key.h"
#include "dkim/sha256_sink.h"

namespace salvo::dkim {
namespace {

using detail::HeaderField;
using detail::WithCrlf;

// Lines of the DKIM-Signature field stay within 76 characters (RFC 5322 §2.1.1 asks < 78
// with the CRLF).
constexpr std::size_t kMaxLine = 76;
constexpr std::string_view kFieldName = "DKIM-Signature:";

// Appends tag text to a header field, folding (CRLF TAB) before a token that would not fit.
// A fold only goes where RFC 6376 §3.2/§3.5 allow FWS: between tags, around the colons of
// h=, inside base64.
class Folder {
 public:
  enum class Lead : bool { None, Space };

  Folder(std::string& out, std::size_t column) noexcept : out_(out), column_(column) {}

  void token(std::string_view s, Lead lead) {
    const std::size_t need = (lead == Lead::Space ? 1 : 0) + s.size();
    if (column_ + need > kMaxLine && column_ > 1) {
      out_ += "\r\n\t";
      column_ = 1;
    } else if (lead == Lead::Space) {
      out_ += ' ';
      ++column_;
    }
    out_ += s;
    column_ += s.size();
  }
  // Base64 text, which may break anywhere.
  void fill(std::string_view s) {
    while (!s.empty()) {
      if (column_ >= kMaxLine) {
        out_ += "\r\n\t";
        column_ = 1;
      }
      const std::size_t k = std::min(s.size(), kMaxLine - column_);
      out_ += s.substr(0, k);
      column_ += k;
      s.remove_prefix(k);
    }
  }
  std::size_t column() const noexcept { return column_; }

 private:
  std::string& out_;
  std::size_t column_;
};

// RFC 6376 §3.5: d= is a domain name, s= a sequence of sub-domains. ASCII only here
// (U-labels would need RFC 8616 handling; config lower-cases and checks IDNs upstream).
bool valid_domain(std::string_view d) noexcept {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  char prev = '.';
  for (const char c : d) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.' && c != '_') return false;
    if (c == '.' && prev == '.') return false;
    prev = c;
  }
  return true;
}

// RFC 5322 §3.6.8 field-name: printable US-ASCII except ':'.
bool valid_field_name(std::string_view n) noexcept {
  if (n.empty()) return false;
  for (const char c : n) {
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(Algorithm a) noexcept {
  switch (a) {
    case Algorithm::RsaSha256:
      return "rsa-sha256";
    case Algorithm::Ed25519Sha256:
      return "ed25519-sha256";
  }
  return "unknown";
}

std::vector<std::string> default_signed_headers() {
  return {"from",
          "to",
          "cc",
          "subject",
          "date",
          "message-id",
          "reply-to",
          "mime-version",
          "content-type",
          "content-transfer-encoding",
          "list-unsubscribe",
          "list-unsubscribe-post",
          "feedback-id"};
}

struct Signer::Impl {
  std::string domain;
  std::string selector;
  Algorithm algorithm = Algorithm::RsaSha256;
  std::vector<std::string> headers;  // lower case, unique, "from" among them
  bool oversign_from = true;
  std::unique_ptr<detail::PrivateKey> key;
  // Unique for the process's life (a SignatureCache key: a new key loaded by a reload,
  // even at the same address and selector, never meets the old one's signatures).
  std::uint64_t id = 0;
  // "DKIM-Signature: v=1; a=...; c=relaxed/relaxed; d=...; s=...;" folded, and the column
  // its last line ends at: the part of every signature that never changes.
  std::string prefix;
  std::size_t prefix_column = 0;
};

Result<Signer> Signer::create(SignerOptions options) {
  if (!valid_domain(options.domain)) return fail(errc::bad_domain);
  if (!valid_domain(options.selector)) return fail(errc::bad_selector);
  auto impl = std::make_unique<Impl>();
  impl->headers.reserve(options.headers.size() + 1);
  for (std::string& name : options.headers) {
    if (!valid_field_name(name)) return fail(errc::bad_header_name);
    for (char& c : name) c = detail::ascii_lower(c);
    bool seen = false;
    for (const std::string& h : impl->headers) seen = seen || h == name;
    if (!seen) impl->headers.push_back(std::move(name));
  }
  bool has_from = false;
  for (const std::string& h : impl->headers) has_from = has_from || h == "from";
  if (!has_from) impl->headers.insert(impl->headers.begin(), "from");

  auto key = detail::PrivateKey::load(options.private_key_pem, options.algorithm);
  if (!key) return std::unexpected(key.error());
  impl->key = std::move(*key);
  impl->domain = std::move(options.domain);
  impl->selector = std::move(options.selector);
  impl->algorithm = options.algorithm;
  impl->oversign_from = options.oversign_from;
  static std::atomic<std::uint64_t> next_id{1};
  impl->id = next_id.fetch_add(1, std::memory_order_relaxed);

  std::string& p = impl->prefix;
  p = kFieldName;
  Folder f(p, kFieldName.size());
  f.token("v=1;", Folder::Lead::Space);
  std::string tag = "a=";
  tag += to_string(impl->algorithm);
  tag += ';';
  f.token(tag, Folder::Lead::Space);
  f.token("c=relaxed/relaxed;", Folder::Lead::Space);
  tag = "d=";
  tag += impl->domain;
  tag += ';';
  f.token(tag, Folder::Lead::Space);
  tag = "s=";
  tag += impl->selector;
  tag += ';';
  f.token(tag, Folder::Lead::Space);
  impl->prefix_column = f.column();
  return Signer(std::move(impl));
}

Signer::Signer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Signer::Signer(Signer&&) noexcept = default;
Signer& Signer::operator=(Signer&&) noexcept = default;
Signer::~Signer() = default;

const std::string& Signer::domain() const noexcept { return impl_->domain; }
const std::string& Signer::selector() const noexcept { return impl_->selector; }
Algorithm Signer::algorithm() const noexcept { return impl_->algorithm; }
const std::string& Signer::public_key_record() const noexcept {
  return impl_->key->public_key_record();
}

std::string Signer::record_name() const {
  std::string name = impl_->selector;
  name += "._domainkey.";
  name += impl_->domain;
  return name;
}

Result<std::string> body_hash(std::string_view message) {
  const detail::MessageParts parts = detail::split_message(message);
  detail::Sha256Digest digest;
  detail::Sha256Sink body;
  detail::canon_body_relaxed(parts.body, body);
  if (!body.finish(digest)) return fail(errc::sign_failed);
  std::string out;
  detail::base64_append(digest, out);
  return out;
}

std::size_t SignatureCache::KeyHash::operator()(const Key& k) const noexcept {
  // The digest part is already uniformly distributed.
  std::uint64_t h = 0;
  std::memcpy(&h, k.data() + 8, sizeof h);
  std::uint64_t id = 0;
  std::memcpy(&id, k.data(), sizeof id);
  return static_cast<std::size_t>(h ^ (id * 0x9e3779b97f4a7c15ULL));
}

const std::string* SignatureCache::find(const Key& k) {
  auto it = map_.find(k);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  return &it->second;
}

void SignatureCache::insert(const Key& k, std::string signature) {
  if (capacity_ == 0) return;
  if (!map_.emplace(k, std::move(signature)).second) return;
  order_.push_back(k);
  while (order_.size() > capacity_) {
    map_.erase(order_.front());
    order_.pop_front();
  }
}

Result<std::string> Signer::sign(std::string_view message, std::int64_t unix_time,
                                 const SignContext& context) const {
  const Impl& im = *impl_;
  const detail::MessageParts parts = detail::split_message(message);
  std::vector<HeaderField> fields;
  fields.reserve(32);
  if (auto st = detail::parse_header_fields(parts.header, fields); !st) {
    return std::unexpected(st.error());
  }

  detail::Sha256Digest digest;
  std::string computed_bh;
  std::string_view body_hash = context.body_hash;
  if (body_hash.empty()) {
    detail::Sha256Sink body;
    detail::canon_body_relaxed(parts.body, body);
    if (!body.finish(digest)) return fail(errc::sign_failed);
    detail::base64_append(digest, computed_bh);
    body_hash = computed_bh;
  }

  std::string out;
  out.reserve(im.prefix.size() + 160 + 16 * im.headers.size() +
              detail::base64_size(im.key->signature_size()) * 79 / 75);
  out = im.prefix;
  Folder f(out, im.prefix_column);
  {
    char buf[32] = "t=";
    auto [end, ec] = std::to_chars(buf + 2, buf + sizeof buf - 1, unix_time);
    if (ec != std::errc{}) return fail(errc::sign_failed);
    *end++ = ';';
    f.token(std::string_view(buf, static_cast<std::size_t>(end - buf)), Folder::Lead::Space);
  }

  detail::Sha256Sink hashed;
  std::string tag;
  bool first = true;
  auto list = [&](const std::string& name) {
    tag.assign(first ? "h=" : ":");
    tag += name;
    f.token(tag, first ? Folder::Lead::Space : Folder::Lead::None);
    first = false;
  };
  for (const std::string& name : im.headers) {
    std::size_t count = 0;
    for (std::size_t i = fields.size(); i-- > 0;) {
      if (!detail::iequals(fields[i].name, name)) continue;
      detail::canon_header_relaxed(fields[i].raw, hashed, WithCrlf::Yes);
      list(name);
      ++count;
    }
    if (name == "from") {
      if (count == 0) return fail(errc::no_from_header);
      // One more "from" than there are: a null instance (§5.4.2), hashed as nothing.
      if (im.oversign_from) list(name);
    }
  }
  f.token(";", Folder::Lead::None);
  tag.assign("bh=");
  tag += body_hash;
  tag += ';';
  f.token(tag, Folder::Lead::Space);
  f.token("b=", Folder::Lead::Space);
  // The field as it will be sent, b= empty, relaxed and without its CRLF (§3.7).
  detail::canon_header_relaxed(out, hashed, WithCrlf::No);
  if (!hashed.finish(digest)) return fail(errc::sign_failed);

  SignatureCache::Key key;
  std::memcpy(key.data(), &im.id, sizeof im.id);
  std::memcpy(key.data() + 8, digest.data(), digest.size());
  if (const std::string* cached = context.cache ? context.cache->find(key) : nullptr) {
    f.fill(*cached);
  } else {
    std::string signature;
    signature.reserve(detail::base64_size(im.key->signature_size()));
    if (auto st = im.key->sign_digest(digest, signature); !st) return std::unexpected(st.error());
    f.fill(signature);
    if (context.cache != nullptr) context.cache->insert(key, std::move(signature));
  }
  out += "\r\n";
  return out;
}

Result<std::string> public_key_record(std::string_view private_key_pem, Algorithm algorithm) {
  auto key = detail::PrivateKey::load(private_key_pem, algorithm);
  if (!key) return std::unexpected(key.error());
  return (*key)->public_key_record();
}

}  // namespace salvo::dkim
