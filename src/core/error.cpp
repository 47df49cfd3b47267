#include <sky_async/error.hpp>

#include <cerrno>
#include <string>

namespace sky_async {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sky_async"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_a_regular_file:
        return "Not a regular file";
    }
    return "Unknown sky_async error";
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    if (static_cast<errc>(value) == errc::not_a_regular_file) {
      return std::errc::invalid_argument;
    }
    return {value, *this};
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace sky_async
