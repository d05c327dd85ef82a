// SPDX-License-Identifier: Apache-2.0
// Child processes for integration tests: start a built program (salvo-sink, salvo-blast,
// later salvod) with arguments, capture its stdout and stderr to files, wait for a file
// to appear, signal it, and wait for its exit — all bounded in time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace salvo::test {

// Path of a program in the build directory ("salvo-sink" -> SALVO_BINARY_DIR/salvo-sink).
std::string program_path(const std::string& name);

// A fresh temporary directory, removed (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class Process {
 public:
  // Starts argv[0] (a full path) with argv; stdout/stderr go to files in `work`.
  Process(const std::vector<std::string>& argv, const std::string& work);
  ~Process();  // SIGKILLs a still-running child
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const;
  // Waits for exit; nullopt on timeout. Returns the exit status (128+N for signal N).
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_path_;
  std::string err_path_;
};

// Polls until `path` exists and is non-empty; false on timeout.
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout);
std::string read_file(const std::string& path);

}  // namespace salvo::test
