// The walk behind file_mounts_digest: SkyPilot's order and byte layout, with the
// file digests left as placeholders so that the files can be hashed concurrently.
#pragma once

#include <sky_async/mounts.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace sky_async::detail {

struct mounts_plan {
  static constexpr std::size_t no_file = static_cast<std::size_t>(-1);
  // The stream is, piece after piece: `bytes`, then the raw SHA-256 of files[file]
  // unless file is no_file.
  struct piece {
    std::string bytes;
    std::size_t file = no_file;
  };
  std::vector<piece> pieces;
  std::vector<std::filesystem::path> files;
  // Directories that could not be listed (SkyPilot's os.walk skips them silently).
  std::vector<file_mount_problem> problems;
};

// Python's os.path.expanduser on POSIX: `~` is $HOME (else the passwd entry of the
// real uid), `~user` that user's home; unknown users leave the path unchanged.
std::string expand_user(const std::string& path);

// Blocking (directory listings and stats). Returns early, incomplete, once `stop` is set.
mounts_plan plan_file_mounts(std::vector<file_mount> mounts, const std::atomic<bool>& stop);

}  // namespace sky_async::detail
