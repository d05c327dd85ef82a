// SPDX-License-Identifier: Apache-2.0
// Hot reload (SIGHUP, salvoctl reload): what can change while running does — shaping,
// routes, DKIM keys, egress pools, retry policy, bounce rules — and the rest ([node],
// [[listen]], [tls], [dns], [http]) is named as waiting for a restart. The new file is
// validated whole before any shard sees it; a refused file leaves the running one in force.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <salvo/config/config.h>
#include <salvo/queue/verdict.h>

#include <salvo/admin/control.h>

namespace salvo::admin {

// Owner: main. Called from main's signal loop and the control thread (serialised by its
// mutex). A configuration, its classifier and its DKIM keys are built once here, off the
// shard loops, and handed to every shard as one request::Reload; each shard holds it until
// the next one, so an old configuration is freed once no shard uses it.
class Reloader {
 public:
  Reloader(std::string path, const config::LoadOptions& lo, std::vector<ControlInbox*> inboxes,
           config::ConfigPtr first)
      : path_(std::move(path)), options_(lo), inboxes_(std::move(inboxes)),
        current_(std::move(first)) {}

  // {"ok": true, "config", "warnings": [...]} or {"ok": false, "error"}.
  nlohmann::json reload();

 private:
  nlohmann::json refuse(const std::string& why);

  std::mutex mu_;
  std::string path_;
  config::LoadOptions options_;
  std::vector<ControlInbox*> inboxes_;
  config::ConfigPtr current_;  // what the warnings compare against
};

}  // namespace salvo::admin
