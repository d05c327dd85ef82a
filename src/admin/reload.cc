// SPDX-License-Identifier: Apache-2.0
// Hot reload (see reload.h).
#include <salvo/admin/reload.h>

#include <chrono>
#include <future>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <salvo/base/log.h>

namespace salvo::admin {

nlohmann::json Reloader::reload() {
  std::lock_guard lock(mu_);
  auto loaded = config::load_file(path_, options_);
  if (!loaded) return refuse(loaded.error().message);
  // Classifier, DKIM keys and TLS contexts built here, once, off the shard loops.
  auto settings = outbound::DeliverySettings::build(*loaded);
  if (!settings) return refuse(settings.error());
  const config::Config& next = **loaded;
  nlohmann::json warnings = nlohmann::json::array();
  const config::Config& cur = *current_;
  if (!(next.node == cur.node)) warnings.push_back("[node] changes wait for a restart");
  if (!(next.listen == cur.listen)) warnings.push_back("[[listen]] changes wait for a restart");
  // [tls] ca_bundle is delivery's: the client contexts above are built from it.
  if (next.tls.certificate != cur.tls.certificate || next.tls.key != cur.tls.key) {
    warnings.push_back("[tls] certificate and key changes wait for a restart");
  }
  if (!(next.dns == cur.dns)) warnings.push_back("[dns] changes wait for a restart");
  if (!(next.http == cur.http)) warnings.push_back("[http] changes wait for a restart");
  // Validated whole above, so no shard can refuse it: every shard applies it, each when it
  // next looks at its inbox. One that has not confirmed in 10 s (a very busy loop) still
  // will: the request waits there.
  const request::Reload r{*settings};
  std::vector<std::future<ShardAnswer>> answers;
  for (auto* in : inboxes_) answers.push_back(in->post(r));
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (answers[i].wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      warnings.push_back(fmt::format("shard {} has not confirmed yet; it applies the new "
                                     "configuration when its loop next checks its inbox", i));
    }
  }
  current_ = *loaded;
  log::info("salvod: reloaded {}: shaping, routes, DKIM keys, egress, retry policy, bounce "
            "rules and delivery TLS in force{}", path_, warnings.empty() ? "" : " (with warnings)");
  for (const auto& w : warnings) log::warn("salvod: reload: {}", w.get<std::string>());
  return nlohmann::json{{"ok", true}, {"config", path_}, {"warnings", warnings}};
}

nlohmann::json Reloader::refuse(const std::string& why) {
  log::error("salvod: reload refused, the running configuration stays: {}", why);
  return nlohmann::json{{"ok", false}, {"error", "reload refused: " + why}};
}

}  // namespace salvo::admin
