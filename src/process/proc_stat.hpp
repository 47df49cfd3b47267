// Reading /proc/<pid>/stat: the process state and start time, parsed robustly.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sky_async::detail {

struct proc_stat {
  char state = '?';              // field 3: R, S, D, Z, X, ...
  std::uint64_t start_time = 0;  // field 22: clock ticks after boot
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and
// may itself contain spaces and ')' (a program named "a) Z (b"), so the fields after it
// are counted from the LAST ')'. std::nullopt for text that does not reach field 22.
std::optional<proc_stat> parse_proc_stat(std::string_view text) noexcept;

// Reads and parses /proc/<pid>/stat; std::nullopt when it cannot be read (no such
// process, hidepid) or parsed. One open and one read, into a stack buffer.
std::optional<proc_stat> read_proc_stat(long long pid) noexcept;

}  // namespace sky_async::detail
