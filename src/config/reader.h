// SPDX-License-Identifier: Apache-2.0
// Module-private: the schema (every section and key the parser accepts), the problem list,
// and TableReader, a typed view of one toml++ table that reports in the one-line format.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include <salvo/config/config.h>

namespace salvo::config::detail {

// One table of the schema. `keys` are its fixed keys; a free-form table (routes) has none.
struct Section {
  std::string_view path;  // "node", "listen", "delivery.bounce_rules"
  std::span<const std::string_view> keys;
  bool free_form = false;
};

extern const Section kRootSection;
extern const Section kNodeSection;
extern const Section kListenSection;
extern const Section kTlsSection;
extern const Section kDnsSection;
extern const Section kRoutesSection;
extern const Section kDeliverySection;
extern const Section kBounceRuleSection;
extern const Section kShapingSection;
extern const Section kEgressSection;
extern const Section kDkimSection;
extern const Section kHttpSection;
std::span<const Section* const> all_sections();

// Problems found while loading; the first one in file order is the one reported.
class Diagnostics {
 public:
  void error(std::string key, std::string_view reason, std::uint32_t line);
  void unknown_key(std::string key, std::uint32_t line);
  bool empty() const noexcept { return errors_.empty(); }
  ConfigError first() const;

 private:
  std::vector<ConfigError> errors_;
};

std::uint32_t line_of(const toml::node& node);
// "listen[1]" + "max_message_size" -> "listen[1].max_message_size"; keys that are not bare
// TOML keys are quoted: routes."example.com".
std::string join_path(std::string_view prefix, std::string_view key);

// A typed view of one table. Construction reports every key that is not in `section`.
// Getters leave `out` unchanged when the key is absent or wrong (after reporting it) and
// return true only when they stored a value.
class TableReader {
 public:
  TableReader(const toml::table& table, const Section& section, std::string path,
              Diagnostics& diag);

  const std::string& path() const noexcept { return path_; }
  std::uint32_t line() const noexcept { return line_of(table_); }
  std::string path_of(std::string_view key) const { return join_path(path_, key); }
  // The node at `key` or nullptr; `key` must be one of the section's keys.
  const toml::node* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  std::uint32_t line_of_key(std::string_view key) const;

  void error(std::string_view key, std::string_view reason) const;
  void missing(std::string_view key) const;  // "required key missing" at the table's line

  bool read(std::string_view key, std::string& out) const;
  bool read(std::string_view key, bool& out) const;
  bool read_u32(std::string_view key, std::uint32_t& out, std::uint64_t min,
                std::uint64_t max) const;
  bool read_port(std::string_view key, std::uint16_t& out) const;
  bool read_size(std::string_view key, std::uint64_t& out, std::uint64_t min,
                 std::uint64_t max) const;
  bool read_duration(std::string_view key, Duration& out, Duration min,
                     Duration max = Duration::max()) const;
  bool read_rate(std::string_view key, std::optional<Rate>& out) const;
  // A list of strings; each element comes with its own path ("auth[1]") and line.
  struct Item {
    std::string value;
    std::string path;
    std::uint32_t line;
  };
  bool read_strings(std::string_view key, std::vector<Item>& out) const;
  // An array of tables ([[x]] or [{...}]) / a sub-table, for nested sections.
  const toml::array* array_of_tables(std::string_view key) const;
  const toml::table* table(std::string_view key) const;

  Diagnostics& diagnostics() const noexcept { return diag_; }

 private:
  const toml::table& table_;
  const Section& section_;
  std::string path_;
  Diagnostics& diag_;
};

// Root-level helpers for the sections: a table that may be absent, an array of tables.
const toml::table* section_table(const toml::table& root, const Section& section,
                                 Diagnostics& diag);
const toml::array* section_array(const toml::table& root, const Section& section,
                                 Diagnostics& diag);
// The elements of `array` (at `path`) in order; an element that is not a table is reported
// and is nullptr in the result, so indexes still match "listen[i]".
std::vector<const toml::table*> tables_of(const toml::array& array, std::string_view path,
                                          Diagnostics& diag);

// Lower-case ASCII copy.
std::string lower(std::string_view s);
// "%s" for a Duration in the config's own units ("5m", "250ms"): used in messages.
std::string show(Duration d);

// The per-section parsers (one .cc each); they report into `diag` and never throw.
struct Context {
  const LoadOptions& options;
  Diagnostics& diag;
};
void parse_node(const toml::table& root, Node& out, Context& ctx);
void parse_listen(const toml::table& root, std::vector<Listener>& out, Context& ctx);
void parse_tls(const toml::table& root, Tls& out, Context& ctx);
void parse_dns(const toml::table& root, Dns& out, Context& ctx);
void parse_http(const toml::table& root, Http& out, Context& ctx);
void parse_delivery(const toml::table& root, Delivery& out, Context& ctx);
void parse_routes(const toml::table& root, std::uint16_t smtp_port, RouteTable& out, Context& ctx);
// After parse_egress: an entry's egress must name one of `egress`.
void parse_shaping(const toml::table& root, const std::vector<Egress>& egress, Shaping& default_out,
                   std::vector<Shaping>& out, Context& ctx);
void parse_egress(const toml::table& root, std::vector<Egress>& out, Context& ctx);
void parse_dkim(const toml::table& root, std::vector<Dkim>& out, Context& ctx);

// After every section parsed cleanly: checks that span sections (starttls needs a
// certificate, shaping names a known egress, ...), and fills derived defaults.
void cross_check(const toml::table& root, Config& config, Context& ctx);

}  // namespace salvo::config::detail
