// SPDX-License-Identifier: Apache-2.0
// spool::errc: error codes of the spool module. Kernel errors (EIO,
// ENOSPC from a CQE) keep std::system_category; these name the spool's own conditions.
#pragma once

#include <system_error>

namespace salvo::spool {

enum class errc {
  malformed_record = 1,  // a payload does not decode (truncated field, bad enum, ...)
  bad_checksum,          // CRC32C of a framed record does not match
  record_too_large,      // a record larger than the spool can hold
  segment_retired,       // the batch shared a segment whose write/fdatasync failed
  job_failed,            // an earlier record of this job failed; the job cannot commit
  unknown_job,           // job recipients/commit for a job without template
  short_write,           // the kernel wrote less than asked and continuing failed
  bad_segment,           // a segment file's header is missing or inconsistent
  writer_closed,         // append after close()
  bad_id_mark,           // the next-id file is unreadable or malformed
  bad_punch_note,        // a seg-*.spool.punched file is unreadable or malformed
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace salvo::spool

template <>
struct std::is_error_code_enum<salvo::spool::errc> : std::true_type {};
