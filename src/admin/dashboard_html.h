// SPDX-License-Identifier: Apache-2.0
// src/admin/dashboard.html, compiled in (tools/cmake/EmbedFile.cmake).
#pragma once

#include <string_view>

namespace salvo::admin {
extern const std::string_view kDashboardHtml;
}
