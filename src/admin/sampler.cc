// SPDX-License-Identifier: Apache-2.0
// Sampler (see sampler.h).
#include "admin/sampler.h"

#include <algorithm>

namespace salvo::admin {

std::uint64_t received_recipients(const ShardAnswer& a) {
  return static_cast<std::uint64_t>(a.metrics.sum("salvo_received_recipients_total"));
}

std::uint64_t delivered_recipients(const ShardAnswer& a) {
  return static_cast<std::uint64_t>(
      a.metrics.sum("salvo_delivery_outcomes_total", "outcome=\"delivered\""));
}

std::uint64_t spool_recipients(const ShardAnswer& a) {
  return static_cast<std::uint64_t>(a.metrics.value("salvo_spool_recipients"));
}

Sampler::Sample Sampler::add(const std::vector<ShardAnswer>& answers, double t, double wall) {
  Sample s;
  s.t = t;
  s.wall = wall;
  bool all = true;
  for (const auto& a : answers) {
    all &= a.answered;
    s.blocked.push_back(a.blocked_ns);
    s.in += received_recipients(a);
    s.out += delivered_recipients(a);
    s.queued += spool_recipients(a);
    s.in_flight += static_cast<std::uint64_t>(
        a.metrics.value("salvo_queue_recipients", "state=\"in_flight\""));
  }
  if (all) {
    samples_.push_back(s);
    while (samples_.size() > kKept) samples_.pop_front();
  }
  return s;
}

Sampler::Rates Sampler::rates() const {
  Rates r;
  if (samples_.size() < 2) return r;
  const Sample& last = samples_.back();
  const Sample& prev = samples_[samples_.size() - 2];
  const double dt = std::max(1e-3, last.t - prev.t);
  r.in_1s = static_cast<double>(last.in - std::min(last.in, prev.in)) / dt;
  r.out_1s = static_cast<double>(last.out - std::min(last.out, prev.out)) / dt;
  const Sample& first = samples_.size() > 61 ? samples_[samples_.size() - 61] : samples_.front();
  const double dm = std::max(1e-3, last.t - first.t);
  r.in_1m = static_cast<double>(last.in - std::min(last.in, first.in)) / dm;
  r.out_1m = static_cast<double>(last.out - std::min(last.out, first.out)) / dm;
  return r;
}

std::vector<double> Sampler::utilisation(std::size_t shards) const {
  std::vector<double> out(shards, -1.0);
  if (samples_.size() < 2) return out;
  const Sample& last = samples_.back();
  const Sample& prev = samples_[samples_.size() - 2];
  const double dt = last.t - prev.t;
  if (dt <= 0) return out;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i >= last.blocked.size() || i >= prev.blocked.size()) continue;
    const double idle =
        static_cast<double>(last.blocked[i] - std::min(last.blocked[i], prev.blocked[i])) / 1e9;
    out[i] = std::clamp(1.0 - idle / dt, 0.0, 1.0);
  }
  return out;
}

std::vector<Sampler::Point> Sampler::history() const {
  std::vector<Point> out;
  for (std::size_t i = 1; i < samples_.size(); ++i) {
    const Sample& p = samples_[i - 1];
    const Sample& c = samples_[i];
    const double dt = std::max(1e-3, c.t - p.t);
    out.push_back(Point{c.wall, static_cast<double>(c.in - std::min(c.in, p.in)) / dt,
                        static_cast<double>(c.out - std::min(c.out, p.out)) / dt, c.queued});
  }
  return out;
}

}  // namespace salvo::admin
