// tail_files for Python. Lines are decoded here, with the GIL, by CPython's own codec
// machinery (PyUnicode_Decode is what bytes.decode calls), so every encoding and error
// handler gives exactly what `piece.decode(encoding, errors).rstrip("\r")` gives in
// Python, without first making a bytes object per line. Without an encoding the lines
// come back raw, as bytes.
#include "python/bridge.hpp"
#include "python/convert.hpp"
#include "tail/tail_engine.hpp"

#include <pybind11/stl.h>

#include <sky_async/runtime.hpp>
#include <sky_async/tail.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sky_async::python {

namespace {

// Whether every byte is ASCII, eight at a time: such text decodes to the same
// characters in every ASCII-compatible codec, and no error handler is ever called.
bool is_ascii(std::string_view text) noexcept {
  std::uint64_t any = 0;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    any |= word;
  }
  for (; i < text.size(); ++i) any |= static_cast<unsigned char>(text[i]);
  return (any & 0x8080808080808080ULL) == 0;
}

// A line without its trailing CRs.
std::string_view strip_cr(std::string_view line) noexcept {
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// What `line.decode(...).rstrip("\r")` gives for an ASCII line, with "\n" appended
// unless it is the last: one allocation (most log lines take this path).
PyObject* ascii_line(std::string_view line, bool last) {
  line = strip_cr(line);
  const std::size_t length = line.size() + (last ? 0 : 1);
  PyObject* text = PyUnicode_New(static_cast<Py_ssize_t>(length), 127);
  if (text == nullptr) throw py::error_already_set();
  auto* out = PyUnicode_1BYTE_DATA(text);
  // Not a C string: PyUnicode_New reserved the terminator, and the length is explicit.
  std::copy_n(line.data(), line.size(), out);
  if (!last) out[line.size()] = '\n';
  return text;
}

// The last line, or every other line with "\n" appended: SkyPilot's strings, through
// the codec (UTF-8 directly, the others by name as bytes.decode does).
PyObject* decode_line(std::string_view line, const char* encoding, const char* errors, bool utf8, bool last) {
  auto text = py::reinterpret_steal<py::object>(
      utf8 ? PyUnicode_DecodeUTF8(line.data(), static_cast<Py_ssize_t>(line.size()), errors)
           : PyUnicode_Decode(line.data(), static_cast<Py_ssize_t>(line.size()), encoding, errors));
  if (!text) throw py::error_already_set();
  const Py_ssize_t length = PyUnicode_GET_LENGTH(text.ptr());
  Py_ssize_t kept = length;
  while (kept > 0 && PyUnicode_READ_CHAR(text.ptr(), kept - 1) == '\r') --kept;
  if (kept != length) {
    text = py::reinterpret_steal<py::object>(PyUnicode_Substring(text.ptr(), 0, kept));
    if (!text) throw py::error_already_set();
  }
  if (last) return text.release().ptr();
  static const auto* newline = new py::str("\n");  // never freed: outlives interpreter teardown
  PyObject* joined = PyUnicode_Concat(text.ptr(), newline->ptr());
  if (joined == nullptr) throw py::error_already_set();
  return joined;
}

// The codec names Python's codecs.lookup() gives (the Python layer passes those).
struct codec {
  std::optional<std::string> encoding;  // none: the lines as bytes, undecoded
  std::string errors;
  bool utf8 = false;
  bool ascii_compatible = false;

  codec(std::optional<std::string> name, std::string handler)
      : encoding(std::move(name)),
        errors(std::move(handler)),
        utf8(encoding && *encoding == "utf-8"),
        ascii_compatible(utf8 || (encoding && (*encoding == "ascii" || *encoding == "iso8859-1"))) {}
};

// The item a backend reports per file (see TailItem in _tail.py): the list of str
// lines, or without an encoding (lines as bytes, whether the data ended with LF); the
// exception raised by decoding; (errno, message or None); or None for a file the
// operation never got to. The lines are cut out of the file's text as they are built,
// straight into the list.
py::object to_item(const detail::tail_text& result, const codec& how) {
  if (!result.ok()) return error_item(result.error);
  const std::size_t count = result.line_count;
  auto lines = py::reinterpret_steal<py::list>(PyList_New(static_cast<Py_ssize_t>(count)));
  if (!lines) throw py::error_already_set();
  const std::string_view text(result.text);
  const bool ascii = how.ascii_compatible && is_ascii(text);
  std::size_t begin = 0;
  try {
    for (std::size_t i = 0; i < count; ++i) {
      const bool last = i + 1 == count;
      const std::size_t lf = last ? text.size() : text.find('\n', begin);
      const std::string_view line = text.substr(begin, lf - begin);
      begin = lf + 1;
      PyObject* item = nullptr;
      if (!how.encoding) {
        item = PyBytes_FromStringAndSize(line.data(), static_cast<Py_ssize_t>(line.size()));
        if (item == nullptr) throw py::error_already_set();
      } else if (ascii || (how.ascii_compatible && is_ascii(line))) {
        item = ascii_line(line, last);
      } else {
        item = decode_line(line, how.encoding->c_str(), how.errors.c_str(), how.utf8, last);
      }
      PyList_SET_ITEM(lines.ptr(), static_cast<Py_ssize_t>(i), item);
    }
  } catch (py::error_already_set& e) {
    // UnicodeDecodeError (errors='strict') or LookupError (an unknown handler): this
    // file's result, so that the other files keep theirs.
    if (!e.matches(PyExc_UnicodeError) && !e.matches(PyExc_LookupError)) throw;
    return e.value();
  }
  if (how.encoding) return std::move(lines);
  PyObject* pair = PyTuple_New(2);
  if (pair == nullptr) throw py::error_already_set();
  PyTuple_SET_ITEM(pair, 0, lines.release().ptr());
  PyTuple_SET_ITEM(pair, 1, Py_NewRef(result.final_newline ? Py_True : Py_False));
  return py::reinterpret_steal<py::object>(pair);
}

py::list to_items(const std::vector<detail::tail_text>& results, const codec& how) {
  auto items = py::reinterpret_steal<py::list>(PyList_New(static_cast<Py_ssize_t>(results.size())));
  if (!items) throw py::error_already_set();
  for (std::size_t i = 0; i < results.size(); ++i) {
    PyList_SET_ITEM(items.ptr(), static_cast<Py_ssize_t>(i), to_item(results[i], how).release().ptr());
  }
  return items;
}

std::shared_ptr<detail::tail_text_operation> make_operation(const py::list& paths, std::size_t n,
                                                            std::size_t chunk_size, std::size_t concurrency) {
  return detail::make_tail_text_operation(detail::impl_of(runtime::global()), to_paths(paths), n,
                                          tail_options{.chunk_size = chunk_size, .concurrency = concurrency});
}

}  // namespace

void register_tail(py::module_& m) {
  m.def(
      "tail_files",
      [](const std::shared_ptr<completion_queue>& queue, const py::list& paths, std::size_t n,
         std::size_t chunk_size, std::size_t concurrency, std::optional<std::string> encoding,
         std::string errors, py::object future) {
        return start_for_loop(queue, make_operation(paths, n, chunk_size, concurrency), std::move(future),
                              [how = codec(std::move(encoding), std::move(errors))](
                                  const std::vector<detail::tail_text>& r) { return to_items(r, how); });
      },
      py::arg("queue"), py::arg("paths"), py::arg("n"), py::arg("chunk_size"), py::arg("concurrency"),
      py::arg("encoding"), py::arg("errors"), py::arg("future"));
  m.def(
      "tail_files_blocking",
      [](const py::list& paths, std::size_t n, std::size_t chunk_size, std::size_t concurrency,
         const std::optional<std::string>& encoding, const std::string& errors) {
        return to_items(run_blocking(make_operation(paths, n, chunk_size, concurrency)),
                        codec(encoding, errors));
      },
      py::arg("paths"), py::arg("n"), py::arg("chunk_size"), py::arg("concurrency"), py::arg("encoding"),
      py::arg("errors"));
}

}  // namespace sky_async::python
