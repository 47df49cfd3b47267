// The pure part of tail_files: which lines the backwards chunked read of SkyPilot's
// read_last_n_lines selects, with the reads behind a callback so that tests and the
// fuzzer can run it over an in-memory buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace sky_async::detail {

// Reads up to `want` bytes at `offset` into `buffer` and sets `got`; fewer than `want`
// only at EOF (a concurrent truncation).
using tail_pread =
    std::function<std::error_code(char* buffer, std::size_t want, std::uint64_t offset, std::size_t& got)>;

struct tail_selection {
  std::vector<std::string> lines;  // the last n pieces of data.split('\n'), without the LFs
  bool final_newline = false;      // the data read ended with LF
};

// The selection on a file of `size` bytes (the size seen at open): reads backwards in
// `chunk_size` blocks (> 0) until more than n LFs were seen or the start is reached,
// then takes the last n pieces of the bytes read split on LF, less the empty piece after
// a final LF. Returns operation_canceled once `abandoned()` is true (asked before every
// read), or the first error of `pread`; `out` is then unspecified.
std::error_code select_tail(const tail_pread& pread, std::uint64_t size, std::size_t n,
                            std::size_t chunk_size, const std::function<bool()>& abandoned,
                            tail_selection& out);

}  // namespace sky_async::detail
