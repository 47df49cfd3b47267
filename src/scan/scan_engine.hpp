// The scan_tree engine: every worker of the runtime lists directories from one shared
// stack of pending directories, depth first, with blocking syscalls (io_uring has no
// getdents, and its statx is slower than fstatat on cached inodes: see
// bench/results/scan_bench.md), in slices that give the worker back to its io_context.
#pragma once

#include "core/runtime_impl.hpp"

#include <sky_async/scan.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sky_async::detail {

// Directory descriptors one worker holds at once for a scan: the directory being
// listed, plus its last subdirectory while that is opened relative to it (or two
// pieces of a path longer than PATH_MAX while that is opened piecewise).
inline constexpr std::size_t scan_fds_per_worker = 2;

// How long a worker lists directories before it lets other handlers run.
inline constexpr auto scan_slice_length = std::chrono::milliseconds(2);

// For tests: a function every scan started after it is set calls with the path of each
// entry it lists (the root as given joined with the names below it), on the worker, right
// after the listing and before the entry is stat'ed or opened. A test removes or replaces
// entries there, to make them vanish between listing and opening deterministically. A scan
// keeps the hook it started with; an empty function removes it. It must not throw.
using scan_entry_hook = std::function<void(const std::string& path)>;
void set_scan_entry_hook(scan_entry_hook hook);

std::shared_ptr<scan_operation> make_tree_scanner(runtime_impl& rt, std::string root,
                                                  const scan_options& options);

}  // namespace sky_async::detail
