// Which way should tail_files read small files: plain syscalls on a worker thread, or
// openat/read/close through that worker's io_uring ring? Both read the last 8 KiB of
// each of 1,000 files of ~100 KiB (page cache warm) on one thread, side by side in one
// run, alternating rounds; the median per-file time of each is printed.
//
// Then what each syscall of the plain path costs, and what the engine's two savings
// give: a first read of ~2 KiB (the bytes 10 log lines need) instead of a whole 8 KiB
// chunk, and opening relative to the directory (openat on an O_PATH fd) instead of by
// the whole path. Variants rotate within each round; medians.
//
//   cmake -S . -B build/bench -G Ninja -DSKY_ASYNC_BUILD_BENCHMARKS=ON -DSKY_ASYNC_BUILD_TESTS=OFF
//   cmake --build build/bench --target tail_io_benchmark && build/bench/bench/cpp/tail_io_benchmark
#include <liburing.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

constexpr std::size_t file_count = 1000;
constexpr std::size_t file_size = 100 * 1024;
constexpr std::size_t tail_bytes = 8192;
constexpr unsigned in_flight = 32;  // files one ring keeps open at once
constexpr int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

std::vector<fs::path> make_files(const fs::path& dir) {
  fs::create_directories(dir);
  std::mt19937_64 random(7);
  std::string data(file_size, '\0');
  std::vector<fs::path> paths;
  for (std::size_t i = 0; i < file_count; ++i) {
    for (auto& c : data) c = static_cast<char>('a' + random() % 26);
    for (std::size_t j = 80; j < data.size(); j += 81) data[j] = '\n';
    paths.push_back(dir / ("f" + std::to_string(i) + ".log"));
    std::ofstream(paths.back(), std::ios::binary)
        .write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  return paths;
}

// open, fstat, pread of the tail, close: four syscalls per file.
std::size_t syscalls(const std::vector<fs::path>& paths, char* buffer) {
  std::size_t total = 0;
  for (const auto& p : paths) {
    const int fd = ::open(p.c_str(), flags);
    struct stat st{};
    ::fstat(fd, &st);
    const auto size = static_cast<std::size_t>(st.st_size);
    const std::size_t want = std::min(tail_bytes, size);
    total += static_cast<std::size_t>(::pread(fd, buffer, want, static_cast<off_t>(size - want)));
    ::close(fd);
  }
  return total;
}

// The same through the ring, `in_flight` files at once: openat -> fstat (no ring op
// gives the size of an open fd more cheaply) -> read -> close.
std::size_t ring(io_uring& uring, const std::vector<fs::path>& paths, std::vector<std::string>& buffers) {
  struct slot {
    int state = 0;  // 0 idle, 1 opening, 2 reading, 3 closing
    int fd = -1;
  };
  std::vector<slot> slots(in_flight);
  std::size_t next = 0, done = 0, total = 0;
  auto start_file = [&](unsigned s) {
    io_uring_sqe* sqe = io_uring_get_sqe(&uring);
    io_uring_prep_openat(sqe, AT_FDCWD, paths[next++].c_str(), flags, 0);
    io_uring_sqe_set_data64(sqe, s);
    slots[s].state = 1;
  };
  for (unsigned s = 0; s < in_flight && next < paths.size(); ++s) start_file(s);
  while (done < paths.size()) {
    io_uring_submit_and_wait(&uring, 1);
    unsigned head, count = 0;
    io_uring_cqe* cqe;
    std::vector<std::pair<unsigned, int>> ready;
    io_uring_for_each_cqe(&uring, head, cqe) {
      ready.emplace_back(static_cast<unsigned>(io_uring_cqe_get_data64(cqe)), cqe->res);
      ++count;
    }
    io_uring_cq_advance(&uring, count);
    for (auto [s, res] : ready) {
      slot& sl = slots[s];
      io_uring_sqe* sqe = nullptr;
      if (sl.state == 1) {
        if (res < 0) throw std::runtime_error("openat failed");
        sl.fd = res;
        struct stat st{};
        ::fstat(sl.fd, &st);
        const auto size = static_cast<std::size_t>(st.st_size);
        const std::size_t want = std::min(tail_bytes, size);
        sqe = io_uring_get_sqe(&uring);
        io_uring_prep_read(sqe, sl.fd, buffers[s].data(), static_cast<unsigned>(want), size - want);
        sl.state = 2;
      } else if (sl.state == 2) {
        total += static_cast<std::size_t>(res);
        sqe = io_uring_get_sqe(&uring);
        io_uring_prep_close(sqe, sl.fd);
        sl.state = 3;
      } else {
        ++done;
        sl.state = 0;
        if (next < paths.size()) start_file(s);
        continue;
      }
      io_uring_sqe_set_data64(sqe, s);
    }
  }
  return total;
}

// The plain path with its parts switchable: `tail` bytes read (0: no read), fstat or
// not, open by whole path or relative to `dir_fd` (-1: whole path).
std::size_t variant(const std::vector<fs::path>& paths, const std::vector<std::string>& names, int dir_fd,
                    bool with_fstat, std::size_t tail, char* buffer) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const int fd = dir_fd < 0 ? ::open(paths[i].c_str(), flags) : ::openat(dir_fd, names[i].c_str(), flags);
    std::size_t size = file_size;
    if (with_fstat) {
      struct stat st{};
      ::fstat(fd, &st);
      size = static_cast<std::size_t>(st.st_size);
    }
    if (tail != 0) {
      const std::size_t want = std::min(tail, size);
      total += static_cast<std::size_t>(::pread(fd, buffer, want, static_cast<off_t>(size - want)));
    }
    ::close(fd);
  }
  return total;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / ("sky-async-tail-io-" + std::to_string(::getpid()));
  const auto paths = make_files(dir);
  io_uring uring{};
  if (int rc = io_uring_queue_init(2 * in_flight, &uring, 0); rc < 0) {
    std::fprintf(stderr, "io_uring unavailable (%d)\n", rc);
    fs::remove_all(dir);
    return 77;
  }
  std::string buffer(tail_bytes, '\0');
  std::vector<std::string> buffers(in_flight, std::string(tail_bytes, '\0'));
  std::vector<double> sys_us, ring_us;
  std::size_t expected = syscalls(paths, buffer.data());  // warm the page cache and dentries
  for (int round = 0; round < 21; ++round) {
    for (int which = 0; which < 2; ++which) {
      const bool use_ring = (which + round) % 2 == 0;
      const auto t0 = std::chrono::steady_clock::now();
      const std::size_t got = use_ring ? ring(uring, paths, buffers) : syscalls(paths, buffer.data());
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      if (got != expected) throw std::runtime_error("short read");
      (use_ring ? ring_us : sys_us).push_back(us / file_count);
    }
  }
  io_uring_queue_exit(&uring);

  std::vector<std::string> names;
  for (const auto& p : paths) names.push_back(p.filename().string());
  const int dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct named {
    const char* what;
    int dir_fd;
    bool fstat;
    std::size_t tail;
  };
  const std::vector<named> parts = {
      {"open + close (whole path)", -1, false, 0},
      {"open + fstat + close", -1, true, 0},
      {"open + fstat + pread 8192 + close (before)", -1, true, 8192},
      {"open + fstat + pread 2048 + close", -1, true, 2048},
      {"openat(dir) + close", dir_fd, false, 0},
      {"openat(dir) + fstat + pread 2048 + close (now)", dir_fd, true, 2048},
  };
  std::vector<std::vector<double>> part_us(parts.size());
  for (int round = 0; round < 21; ++round) {
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const auto& part = parts[(k + static_cast<std::size_t>(round)) % parts.size()];
      const auto t0 = std::chrono::steady_clock::now();
      variant(paths, names, part.dir_fd, part.fstat, part.tail, buffer.data());
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      part_us[static_cast<std::size_t>(&part - parts.data())].push_back(us / file_count);
    }
  }
  ::close(dir_fd);
  fs::remove_all(dir);
  const double s = median(sys_us), r = median(ring_us);
  std::printf("tail of %zu files (%zu KiB each, last %zu B), one thread, median of 21 rounds:\n", file_count,
              file_size / 1024, tail_bytes);
  std::printf("  syscalls (open/fstat/pread/close): %.2f us/file\n", s);
  std::printf("  io_uring (%u in flight, openat/read/close + fstat): %.2f us/file\n", in_flight, r);
  std::printf("  io_uring / syscalls = %.2f (%s is faster)\n", r / s, r < s ? "io_uring" : "syscalls");
  std::printf("\nthe plain path's parts, same files, one thread, median of 21 rotated rounds:\n");
  for (std::size_t k = 0; k < parts.size(); ++k) {
    std::printf("  %-48s %.2f us/file\n", parts[k].what, median(part_us[k]));
  }
  std::printf("  now / before = %.2f\n", median(part_us[5]) / median(part_us[2]));
}
