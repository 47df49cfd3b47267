#include <sky_async/scan.hpp>

#include "scan/scan_engine.hpp"

#include <array>
#include <utility>

namespace sky_async {

namespace {

constexpr std::array<std::string_view, scan_problem_kind_count> kind_names = {
    "unreadable_directory", "unreadable_file",   "broken_symlink", "symlink_loop",
    "special_file",         "invalid_utf8_name", "too_large",      "stat_error",
};

}  // namespace

std::string_view to_string(scan_problem_kind kind) noexcept {
  const auto index = static_cast<std::size_t>(kind);
  return index < kind_names.size() ? kind_names[index] : std::string_view("unknown");
}

std::optional<scan_problem_kind> parse_scan_problem_kind(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kind_names.size(); ++i) {
    if (kind_names[i] == name) return static_cast<scan_problem_kind>(i);
  }
  return std::nullopt;
}

namespace detail {

std::shared_ptr<scan_operation> make_scan_operation(runtime& rt, const std::filesystem::path& root,
                                                    const scan_options& options) {
  return make_tree_scanner(detail::impl_of(rt), root.native(), options);
}

}  // namespace detail

// Coroutine parameters are taken by value: a reference could dangle across the co_await.
// cppcheck-suppress passedByValue
boost::asio::awaitable<tree_scan> scan_tree(runtime& rt, std::filesystem::path root, scan_options options) {
  tree_scan result = co_await async_scan_tree(rt, root, std::move(options), boost::asio::use_awaitable);
  if (result.error) throw std::filesystem::filesystem_error("scan_tree", root, result.error);
  co_return result;
}

// cppcheck-suppress passedByValue
boost::asio::awaitable<tree_scan> scan_tree(std::filesystem::path root, scan_options options) {
  return scan_tree(runtime::global(), std::move(root), std::move(options));
}

}  // namespace sky_async
