// tail_files for Python. Lines are decoded here, with the GIL, by CPython's own codec
// machinery (PyUnicode_Decode is what bytes.decode calls), so every encoding and error
// handler gives exactly what `piece.decode(encoding, errors).rstrip("\r")` gives in
// Python, without first making a bytes object per line. Without an encoding the lines
// come back raw, as bytes.
#include "bridge.hpp"
#include "convert.hpp"

#include <pybind11/stl.h>

#include <sky_async/runtime.hpp>
#include <sky_async/tail.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace sky_async::python {

namespace {

// Whether every byte is ASCII: such a line decodes to the same characters in every
// ASCII-compatible codec, and no error handler is ever called for it.
bool is_ascii(const std::string& line) noexcept {
  unsigned char any = 0;
  for (const char c : line) any |= static_cast<unsigned char>(c);
  return any < 0x80;
}

// What `line.decode(...)` gives for an ASCII line, trailing CRs stripped and "\n"
// appended unless it is the last: built in one allocation (most log lines take this path).
py::object ascii_line(const std::string& line, bool last) {
  std::size_t kept = line.size();
  while (kept > 0 && line[kept - 1] == '\r') --kept;
  const std::size_t length = kept + (last ? 0 : 1);
  auto text = py::reinterpret_steal<py::object>(PyUnicode_New(static_cast<Py_ssize_t>(length), 127));
  if (!text) throw py::error_already_set();
  auto* out = PyUnicode_1BYTE_DATA(text.ptr());
  // Not a C string: PyUnicode_New reserved the terminator, and the length is explicit.
  std::copy_n(line.data(), kept, out);
  if (!last) out[kept] = '\n';
  return text;
}

// The last line, or every other line with "\n" appended: SkyPilot's strings.
py::object decode_line(const std::string& line, const char* encoding, const char* errors,
                       bool ascii_compatible, bool last) {
  if (ascii_compatible && is_ascii(line)) return ascii_line(line, last);
  auto text = py::reinterpret_steal<py::object>(
      PyUnicode_Decode(line.data(), static_cast<Py_ssize_t>(line.size()), encoding, errors));
  if (!text) throw py::error_already_set();
  const Py_ssize_t length = PyUnicode_GET_LENGTH(text.ptr());
  Py_ssize_t kept = length;
  while (kept > 0 && PyUnicode_READ_CHAR(text.ptr(), kept - 1) == '\r') --kept;
  if (kept != length) {
    text = py::reinterpret_steal<py::object>(PyUnicode_Substring(text.ptr(), 0, kept));
    if (!text) throw py::error_already_set();
  }
  if (last) return text;
  static const auto* newline = new py::str("\n");  // never freed: outlives interpreter teardown
  auto joined = py::reinterpret_steal<py::object>(PyUnicode_Concat(text.ptr(), newline->ptr()));
  if (!joined) throw py::error_already_set();
  return joined;
}

// The item a backend reports per file: (lines, whether the data ended with LF) with the
// lines as str (or bytes when `encoding` is empty), the exception raised by decoding,
// (errno, message or None), or None for a file the operation never got to.
py::object to_item(const tail_result& result, const std::optional<std::string>& encoding,
                   const std::string& errors) {
  if (!result.ok()) return error_item(result.error);
  const std::size_t count = result.lines.size();
  py::list lines(count);
  if (!encoding) {
    for (std::size_t i = 0; i < count; ++i) {
      const std::string& line = result.lines[i];
      lines[i] = py::bytes(line.data(), line.size());
    }
  } else {
    // The codec names Python's codecs.lookup() gives (the Python layer passes those).
    const bool ascii_compatible = *encoding == "utf-8" || *encoding == "ascii" || *encoding == "iso8859-1";
    try {
      for (std::size_t i = 0; i < count; ++i) {
        lines[i] =
            decode_line(result.lines[i], encoding->c_str(), errors.c_str(), ascii_compatible, i + 1 == count);
      }
    } catch (py::error_already_set& e) {
      // UnicodeDecodeError (errors='strict') or LookupError (an unknown handler): this
      // file's result, so that the other files keep theirs.
      if (!e.matches(PyExc_UnicodeError) && !e.matches(PyExc_LookupError)) throw;
      return e.value();
    }
  }
  return py::make_tuple(std::move(lines), py::bool_(result.final_newline));
}

py::list to_items(const std::vector<tail_result>& results, const std::optional<std::string>& encoding,
                  const std::string& errors) {
  py::list items(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) items[i] = to_item(results[i], encoding, errors);
  return items;
}

std::shared_ptr<detail::tail_operation> make_operation(const py::list& paths, std::size_t n,
                                                       std::size_t chunk_size, std::size_t concurrency) {
  return detail::make_tail_operation(runtime::global(), to_paths(paths), n,
                                     tail_options{.chunk_size = chunk_size, .concurrency = concurrency});
}

}  // namespace

void register_tail(py::module_& m) {
  m.def(
      "tail_files",
      [](const std::shared_ptr<completion_queue>& queue, const py::list& paths, std::size_t n,
         std::size_t chunk_size, std::size_t concurrency, std::optional<std::string> encoding,
         std::string errors, py::object future) {
        return start_for_loop(
            queue, make_operation(paths, n, chunk_size, concurrency), std::move(future),
            [encoding = std::move(encoding), errors = std::move(errors)](const std::vector<tail_result>& r) {
              return to_items(r, encoding, errors);
            });
      },
      py::arg("queue"), py::arg("paths"), py::arg("n"), py::arg("chunk_size"), py::arg("concurrency"),
      py::arg("encoding"), py::arg("errors"), py::arg("future"));
  m.def(
      "tail_files_blocking",
      [](const py::list& paths, std::size_t n, std::size_t chunk_size, std::size_t concurrency,
         const std::optional<std::string>& encoding, const std::string& errors) {
        return to_items(run_blocking(make_operation(paths, n, chunk_size, concurrency)), encoding, errors);
      },
      py::arg("paths"), py::arg("n"), py::arg("chunk_size"), py::arg("concurrency"), py::arg("encoding"),
      py::arg("errors"));
}

}  // namespace sky_async::python
