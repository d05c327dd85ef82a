// SPDX-License-Identifier: Apache-2.0
// app/dashboard.html, compiled in (tools/cmake/EmbedFile.cmake).
#pragma once

#include <string_view>

namespace salvo::app {
extern const std::string_view kDashboardHtml;
}
