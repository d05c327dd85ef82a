// SPDX-License-Identifier: Apache-2.0
// Slot: record reads, decoding and composition of one transaction.
#include "outbound/slot.h"

#include <salvo/base/log.h>
#include <salvo/spool/template.h>

#include "outbound/destination.h"

namespace salvo::outbound {

void Slot::Part::on_record(Result<spool::RecordBytes> rec) noexcept {
  if (rec) {
    slot->bytes[which] = std::move(*rec);
  } else if (!slot->read_error) {
    slot->read_error = rec.error();
  }
  if (--slot->reads_pending == 0) slot->dest->slot_ready(slot);
}

void Slot::decode() noexcept {
  if (read_error) return;
  if (info.is_job) {
    decode_job();
  } else {
    decode_message();
  }
}

void Slot::decode_message() {
  auto m = spool::decode_message(bytes[0].raw.payload);
  if (!m) {
    read_error = m.error();
    return;
  }
  set_envelope(*m, m->reverse_path, m->body);
  for (const auto& q : rcpts) {
    RcptData r;
    if (q.recipient < m->recipients.size()) {
      r.address = m->recipients[q.recipient].address;
      r.notify = m->recipients[q.recipient].notify;
      r.orcpt = m->recipients[q.recipient].orcpt;
    }
    rcpt_data.push_back(std::move(r));
  }
}

void Slot::decode_job() {
  auto b = spool::decode_job_recipients(bytes[0].raw.payload);
  auto t = spool::decode_job_template(bytes[1].raw.payload);
  if (!b || !t) {
    read_error = !b ? b.error() : t.error();
    return;
  }
  set_envelope(*t, t->from, t->content);
  for (const auto& q : rcpts) {
    RcptData r;
    const std::uint32_t k = q.recipient - b->first_index;
    if (q.recipient >= b->first_index && k < b->recipients.size()) {
      const auto& jr = b->recipients[k];
      r.address = jr.address;
      r.notify = jr.notify;
      r.orcpt = jr.orcpt;
      r.vars.assign(jr.vars.begin(), jr.vars.end());
    }
    rcpt_data.push_back(std::move(r));
  }
}

void Slot::compose() {
  std::string_view base = body_source;
  body_key_ = message();
  if (info.is_job) {
    auto tpl = spool::Template::parse(body_source);
    if (tpl.has_placeholders()) {
      tpl.expand(rcpt_data.front().vars, expanded);
      base = expanded;
      // Variables only in the header section (To:, Subject:) leave one body for the job.
      const std::size_t end = body_source.find("\r\n\r\n");
      const bool body_varies =
          end == std::string_view::npos ||
          spool::Template::parse(body_source.substr(end)).has_placeholders();
      if (body_varies) body_key_ = 0;
    }
  }
  original = base;
  send = base;
}

void Slot::sign(const Signers& signers, SigningCache& cache) {
  const std::int64_t queued_s = info.received_unix_ns / 1'000'000'000;
  auto sig = signers.sign(original, queued_s, cache, body_key_);
  if (!sig) {
    log::warn("outbound: message {}: DKIM signing failed ({}); sent unsigned",
              spool::format_id(message()), sig.error().message());
    return;
  }
  if (sig->empty()) return;
  body.reserve(sig->size() + original.size());
  body = std::move(*sig);
  body.append(original);
  send = body;
}

}  // namespace salvo::outbound
