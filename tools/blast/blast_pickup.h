// SPDX-License-Identifier: Apache-2.0
// Pickup-file generation for salvo-blast (--pickup DIR): writes each file under DIR/tmp
// and renames it into DIR when complete (the pickup directory's contract).
//   eml:  one message per file, PowerMTA envelope lines (X-Sender, X-Receiver...) first;
//   json: bulk jobs {"from","content","recipients":[{"email","vars"}],"job"}, with up to
//         --job-size recipients per file and {{name}}/{{id}} variables in the content.
#pragma once

#include <cstdint>
#include <string>

#include <salvo/base/result.h>

#include "message_factory.h"

namespace salvo::blast {

enum class PickupFormat { Eml, Json };

struct PickupOptions {
  std::string dir;
  PickupFormat format = PickupFormat::Eml;
  std::uint64_t messages = 1000;
  std::uint64_t job_size = 10000;  // json: recipients per job file
  std::string job = "blast";
};

struct PickupResult {
  std::uint64_t files = 0;
  std::uint64_t messages = 0;
  std::uint64_t recipients = 0;
  std::uint64_t bytes = 0;
};

[[nodiscard]] Result<PickupResult> write_pickup(const PickupOptions& options,
                                                const MessageFactory& factory, std::string* why);

}  // namespace salvo::blast
