// SPDX-License-Identifier: Apache-2.0
// Metrics families, snapshots and the per-shard registry (see metrics.h).
#include <salvo/base/metrics.h>

#include <algorithm>

#include <salvo/base/assert.h>

namespace salvo::metrics {

std::string_view to_string(Type t) noexcept {
  switch (t) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
  }
  return "untyped";
}

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  out += escape_label(value);
  out += '"';
  return out;
}

const Sample* Snapshot::find(std::string_view family, std::string_view labels) const noexcept {
  for (const auto& s : samples_) {
    if (s.family->name == family && s.labels == labels) return &s;
  }
  return nullptr;
}

Sample& Snapshot::at(const Family& f, std::string_view labels) {
  for (auto& s : samples_) {
    if (s.family->name == f.name && s.labels == labels) {
      SALVO_CHECK(s.family->type == f.type);
      return s;
    }
  }
  Sample& s = samples_.emplace_back();
  s.family = &f;
  s.labels = std::string(labels);
  return s;
}

void Snapshot::add(const Family& f, std::string_view labels, double v) { at(f, labels).value += v; }

namespace {

void merge_into(Sample& s, const LatencyHistogram& h) {
  if (!s.histogram) {
    s.histogram = std::make_shared<const LatencyHistogram>(h);
    return;
  }
  auto merged = std::make_shared<LatencyHistogram>(*s.histogram);
  merged->merge(h);
  s.histogram = std::move(merged);
}

}  // namespace

void Snapshot::add(const Family& f, std::string_view labels, const LatencyHistogram& h) {
  merge_into(at(f, labels), h);
}

Snapshot& Snapshot::operator+=(const Snapshot& o) {
  for (const auto& s : o.samples_) {
    Sample& mine = at(*s.family, s.labels);
    mine.value += s.value;
    if (s.histogram) merge_into(mine, *s.histogram);
  }
  return *this;
}

double Snapshot::value(std::string_view family, std::string_view labels) const noexcept {
  const Sample* s = find(family, labels);
  return s != nullptr ? s->value : 0.0;
}

double Snapshot::sum(std::string_view family, std::string_view having) const noexcept {
  double total = 0;
  for (const auto& s : samples_) {
    if (s.family->name == family && s.labels.find(having) != std::string::npos) total += s.value;
  }
  return total;
}

void Registry::add(const Source* s) {
  if (std::find(sources_.begin(), sources_.end(), s) == sources_.end()) sources_.push_back(s);
}

void Registry::remove(const Source* s) noexcept { std::erase(sources_, s); }

Snapshot Registry::snapshot() const {
  Snapshot out;
  for (const Source* s : sources_) s->report(out);
  return out;
}

}  // namespace salvo::metrics
