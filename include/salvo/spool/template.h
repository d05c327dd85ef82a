// SPDX-License-Identifier: Apache-2.0
// Job templates (.json pickup files, HTTP inject): the content is stored once and each
// recipient only its variables; the message is expanded when it is sent. A Template is the
// content split once into literal runs and `{{ name }}` placeholders (name:
// [A-Za-z0-9_.-]+, optional spaces inside the braces), then expanded per recipient with
// one pass and no allocation beyond the output. A missing variable expands to nothing
// (as SparkPost and Mailgun do); text that merely looks like "{{" stays as it is.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace salvo::spool {

using TemplateVar = std::pair<std::string_view, std::string_view>;

// Owner: whoever expands; immutable after parse() and shareable by const reference. Views
// into the content passed to parse(): keep that content alive.
class Template {
 public:
  static Template parse(std::string_view content);

  // Appends the expansion to out. vars: (name, value) in any order; the first match wins.
  void expand(std::span<const TemplateVar> vars, std::string& out) const;
  std::size_t expanded_size(std::span<const TemplateVar> vars) const;
  // Placeholder names in order of appearance (duplicates kept).
  std::vector<std::string_view> placeholders() const;
  bool has_placeholders() const noexcept { return vars_ != 0; }

 private:
  struct Part {
    std::string_view text;  // literal, or the variable name
    bool var = false;
  };
  static std::string_view lookup(std::string_view name, std::span<const TemplateVar> vars);
  std::vector<Part> parts_;
  std::size_t vars_ = 0;
};

}  // namespace salvo::spool
