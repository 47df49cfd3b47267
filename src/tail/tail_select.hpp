// The pure part of tail_files: which lines the backwards chunked read of SkyPilot's
// read_last_n_lines selects, with the reads behind a callback so that tests and the
// fuzzer can run it over an in-memory buffer. The engine's blocking reads use it as is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

namespace sky_async::detail {

// Reads up to `want` bytes at `offset` into `buffer` and sets `got`; fewer than `want`
// only at EOF (a concurrent truncation). A std::function rather than a template or a
// function_ref: constructing one per file and calling it twice measured 4-14 ns more than
// direct calls, against about 1 us for one pread (bench/results/cpp_tail_io.txt).
using tail_pread =
    std::function<std::error_code(char* buffer, std::size_t want, std::uint64_t offset, std::size_t& got)>;

// The selected lines as one string, so that a file costs one allocation however many
// lines it has: `text` holds them joined by LF, without the final LF (whether the data
// had one is `final_newline`). `line_count` tells no lines (0) from one empty line (1,
// text "").
struct tail_selection {
  std::string text;
  std::size_t line_count = 0;
  bool final_newline = false;
};

// What the reads of one file teach about the next: how many bytes from the end held
// the (n+1)-th LF (or all the bytes read, if there were not that many). Log files of
// one batch look alike, so the first read of the next file asks for about that much
// instead of a whole chunk: a 2 KiB pread costs about 1.0 us, an 8 KiB one 1.8 us
// (bench/results/cpp_tail_io.txt), and the 10 lines of a typical log take 1-2 KiB of
// the default 8 KiB chunk.
struct tail_hint {
  std::size_t needed = 0;  // 0: nothing learned yet
};

// Bytes for the first read of a file: what the previous file needed plus a margin;
// before any file, a guess of 160 bytes per line. Never more than chunk_size.
std::size_t first_read_size(const tail_hint& hint, std::size_t n, std::size_t chunk_size) noexcept;

// The selection on a file of `size` bytes (the size seen at open): reads backwards,
// first first_read_size(hint, ...) bytes, then `chunk_size` blocks (> 0) as SkyPilot
// does, until more than n LFs were seen or the start is reached, then takes the last n
// pieces of the bytes read split on LF, less the empty piece after a final LF. The
// lines selected do not depend on where the reads start (any data with more than n LFs
// ends with the same n lines), only the number of reads does. Each chunk is scanned for
// LFs backwards as it arrives, up to the (n+1)-th from the end: those give the stop,
// the selection and the new `hint`, in one pass over the bytes. Returns
// operation_canceled once `abandoned()` is true (asked before every read), or the first
// error of `pread`; `out` and `hint` are then unspecified. Throws std::bad_alloc if the
// region read does not fit in memory.
//
// The bytes are read into a buffer per thread, kept between calls (trimmed when a huge
// n or chunk_size grew it past 1 MiB).
std::error_code select_tail(const tail_pread& pread, std::uint64_t size, std::size_t n,
                            std::size_t chunk_size, const std::function<bool()>& abandoned, tail_hint& hint,
                            tail_selection& out);

// The same selection on a file whose size says nothing: /proc and /sys files report 0
// and have content nonetheless (a regular file of size 0 at open costs one read more).
// Reads forwards from offset 0 until a short read (EOF), keeping only the bytes from the
// (n+1)-th LF from the end on, so that memory stays about twice the last n lines and a
// read whatever the file's length; then selects from those bytes as select_tail does.
std::error_code select_tail_unsized(const tail_pread& pread, std::size_t n, std::size_t chunk_size,
                                    const std::function<bool()>& abandoned, tail_hint& hint,
                                    tail_selection& out);

}  // namespace sky_async::detail
