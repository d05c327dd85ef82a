// SPDX-License-Identifier: Apache-2.0
// Metrics: a counter is declared once, next to the code that counts it, and reaches every
// view of it (salvoctl status, /metrics, the dashboard) without more wiring.
//
//   module:  constexpr metrics::Family kCommits{"salvo_spool_commits_total", Counter, "..."};
//            void SpoolWriter::report(metrics::Snapshot& s) const { s.add(kCommits, {}, n); }
//   shard:   Registry holds the shard's Sources; snapshot() asks each to report
//   admin:   sums the shards' snapshots; renders them as Prometheus text and JSON
//
// A Family is the Prometheus name, type and help; a series is a family plus its labels
// (`source="smtp"`). The counters themselves stay plain integers in the modules' own
// structs (no indirection on hot paths): a snapshot reads them, on the owning shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/histogram.h>

namespace salvo::metrics {

enum class Type : std::uint8_t { Counter, Gauge, Histogram };
std::string_view to_string(Type t) noexcept;  // "counter", "gauge", "histogram"

// One metric family. Declare it as a constant where the value is counted; the name follows
// the Prometheus guide (salvo_ prefix, base units, _total for counters).
struct Family {
  std::string_view name;
  Type type = Type::Counter;
  std::string_view help;
};

// One series of a snapshot.
struct Sample {
  const Family* family = nullptr;
  std::string labels;    // `outcome="delivered",class="*"`; "" for none
  double value = 0;      // Counter, Gauge
  // Histogram (nanoseconds); shared by copies of the snapshot, never changed in place.
  std::shared_ptr<const LatencyHistogram> histogram;
};

// Label values as the exposition format wants them: backslash, double quote and line
// feed escaped.
std::string escape_label(std::string_view v);
// `name="value"` with the value escaped.
std::string label(std::string_view name, std::string_view value);

// The values of a moment. Series with the same family and labels are added together (the
// listeners of one shard; the shards of a node).
class Snapshot {
 public:
  void add(const Family& f, std::string_view labels, double v);
  void add(const Family& f, std::string_view labels, std::uint64_t v) {
    add(f, labels, static_cast<double>(v));
  }
  void add(const Family& f, std::string_view labels, const LatencyHistogram& h);
  Snapshot& operator+=(const Snapshot& o);

  // The series' value (0 when absent).
  double value(std::string_view family, std::string_view labels = {}) const noexcept;
  // Every series of a family added up (0 when absent); with `having`, only the series
  // whose labels contain it (`outcome="delivered"`).
  double sum(std::string_view family, std::string_view having = {}) const noexcept;
  const Sample* find(std::string_view family, std::string_view labels = {}) const noexcept;
  // In the order first added; the families of one module stay together.
  const std::vector<Sample>& samples() const noexcept { return samples_; }
  bool empty() const noexcept { return samples_.empty(); }

 private:
  Sample& at(const Family& f, std::string_view labels);
  std::vector<Sample> samples_;
};

// Something that has counters: it adds its series to a snapshot, on its own shard.
class Source {
 public:
  virtual void report(Snapshot& s) const = 0;

 protected:
  ~Source() = default;
};

// One per shard: the Sources alive on it. Owner: the shard's thread (add, remove and
// snapshot there).
class Registry {
 public:
  void add(const Source* s);
  void remove(const Source* s) noexcept;
  Snapshot snapshot() const;
  std::size_t size() const noexcept { return sources_.size(); }

 private:
  std::vector<const Source*> sources_;
};

}  // namespace salvo::metrics
