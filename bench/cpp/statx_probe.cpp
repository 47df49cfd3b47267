// Does statx through io_uring beat a plain fstatat loop for the per-file stat of a
// directory scan? Stats every entry of DIR both ways (page cache warm), REPS times, and
// prints the best per-file time of each as JSON. scan_bench.py builds and runs it:
//   g++ -O2 -std=c++20 bench/cpp/statx_probe.cpp -o statx_probe -luring && ./statx_probe DIR 5
#include <liburing.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;

double per_file_us(clock_type::time_point start, std::size_t files) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count() /
         static_cast<double>(files);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: statx_probe DIR [REPS]\n");
    return 2;
  }
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  const int dir_fd = ::open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  std::vector<std::string> names;
  DIR* dir = ::fdopendir(::dup(dir_fd));
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  if (names.empty()) return 1;

  io_uring ring;
  constexpr unsigned batch = 128;  // in flight at once, as a worker's ring would hold
  if (io_uring_queue_init(2 * batch, &ring, 0) != 0) return 1;
  std::vector<struct statx> results(names.size());
  double best_fstatat = 1e9;
  double best_uring = 1e9;
  unsigned long long sum_fstatat = 0;
  unsigned long long sum_uring = 0;
  for (int rep = 0; rep < reps; ++rep) {
    auto start = clock_type::now();
    sum_fstatat = 0;
    for (const auto& name : names) {
      struct stat st{};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) sum_fstatat += st.st_size;
    }
    best_fstatat = std::min(best_fstatat, per_file_us(start, names.size()));

    start = clock_type::now();
    std::size_t next = 0;
    while (next < names.size()) {
      unsigned queued = 0;
      for (; queued < batch && next < names.size(); ++queued, ++next) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_statx(sqe, dir_fd, names[next].c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_SIZE,
                            &results[next]);
      }
      io_uring_submit_and_wait(&ring, queued);
      for (unsigned k = 0; k < queued; ++k) {
        io_uring_cqe* cqe = nullptr;
        io_uring_wait_cqe(&ring, &cqe);
        io_uring_cqe_seen(&ring, cqe);
      }
    }
    best_uring = std::min(best_uring, per_file_us(start, names.size()));
    sum_uring = 0;
    for (const auto& r : results) sum_uring += r.stx_size;
  }
  io_uring_queue_exit(&ring);
  std::printf(
      "{\"files\": %zu, \"fstatat_us_per_file\": %.3f, \"uring_statx_us_per_file\": %.3f, \"sizes_agree\": "
      "%s}\n",
      names.size(), best_fstatat, best_uring, sum_fstatat == sum_uring ? "true" : "false");
  return 0;
}
