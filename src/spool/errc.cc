// SPDX-License-Identifier: Apache-2.0
// The spool error category.
#include <salvo/spool/errc.h>

#include <string>

namespace salvo::spool {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "spool"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed_record:
        return "malformed spool record";
      case errc::bad_checksum:
        return "spool record checksum mismatch";
      case errc::record_too_large:
        return "spool record too large";
      case errc::segment_retired:
        return "spool segment retired after an IO error";
      case errc::job_failed:
        return "an earlier record of the job failed";
      case errc::unknown_job:
        return "unknown job";
      case errc::short_write:
        return "short write to the spool";
      case errc::bad_segment:
        return "bad spool segment";
      case errc::writer_closed:
        return "spool writer closed";
      case errc::bad_id_mark:
        return "unreadable next-id file";
      case errc::bad_punch_note:
        return "unreadable punch note";
    }
    return "unknown spool error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category kCategory;
  return kCategory;
}

}  // namespace salvo::spool
