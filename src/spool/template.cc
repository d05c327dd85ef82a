// SPDX-License-Identifier: Apache-2.0
// Template parsing and per-recipient expansion.
#include <salvo/spool/template.h>

namespace salvo::spool {
namespace {

bool name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-';
}

// At s[i] == '{' '{': the placeholder's name and its end, or npos when it is not one.
std::size_t placeholder_at(std::string_view s, std::size_t i, std::string_view* name) {
  std::size_t j = i + 2;
  while (j < s.size() && s[j] == ' ') ++j;
  std::size_t start = j;
  while (j < s.size() && name_char(s[j])) ++j;
  if (j == start) return std::string_view::npos;
  std::size_t end = j;
  while (j < s.size() && s[j] == ' ') ++j;
  if (j + 1 >= s.size() || s[j] != '}' || s[j + 1] != '}') return std::string_view::npos;
  *name = s.substr(start, end - start);
  return j + 2;
}

}  // namespace

Template Template::parse(std::string_view content) {
  Template t;
  std::size_t lit = 0, i = 0;
  while (true) {
    std::size_t open = content.find("{{", i);
    if (open == std::string_view::npos) break;
    std::string_view name;
    std::size_t end = placeholder_at(content, open, &name);
    if (end == std::string_view::npos) {
      i = open + 1;
      continue;
    }
    if (open > lit) t.parts_.push_back({content.substr(lit, open - lit), false});
    t.parts_.push_back({name, true});
    ++t.vars_;
    lit = i = end;
  }
  if (lit < content.size()) t.parts_.push_back({content.substr(lit), false});
  return t;
}

std::string_view Template::lookup(std::string_view name, std::span<const TemplateVar> vars) {
  for (const auto& [k, v] : vars) {
    if (k == name) return v;
  }
  return {};
}

void Template::expand(std::span<const TemplateVar> vars, std::string& out) const {
  out.reserve(out.size() + expanded_size(vars));
  for (const Part& p : parts_) out.append(p.var ? lookup(p.text, vars) : p.text);
}

std::size_t Template::expanded_size(std::span<const TemplateVar> vars) const {
  std::size_t n = 0;
  for (const Part& p : parts_) n += p.var ? lookup(p.text, vars).size() : p.text.size();
  return n;
}

std::vector<std::string_view> Template::placeholders() const {
  std::vector<std::string_view> out;
  for (const Part& p : parts_) {
    if (p.var) out.push_back(p.text);
  }
  return out;
}

}  // namespace salvo::spool
