// format_float on any double and precision: glibc's printf("%.*f") (correctly rounded,
// ties to even on the exact binary value) is the oracle; integral values print without
// a point and parse back exactly; only std::invalid_argument, and only for a negative
// precision with a non-integral value.
#include "fuzz_support.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <sky_async/strings.hpp>

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace {

std::string printf_fixed(double value, int precision) {
  const int length = std::snprintf(nullptr, 0, "%.*f", precision, value);
  std::string out(static_cast<std::size_t>(length) + 1, '\0');
  std::snprintf(out.data(), out.size(), "%.*f", precision, value);
  out.resize(static_cast<std::size_t>(length));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider provider(data, size);
  // Mostly small precisions (what callers use), sometimes long ones and extremes; not
  // so long that one input takes more than a moment.
  int precision = 0;
  switch (provider.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      precision = provider.ConsumeIntegralInRange<int>(-3, 20);
      break;
    case 1:
      precision = provider.ConsumeIntegralInRange<int>(-3, 1100);
      break;
    case 2:
      precision = provider.ConsumeBool() ? INT32_MIN : -provider.ConsumeIntegralInRange<int>(1, 1 << 20);
      break;
    default:
      precision = 1;
      break;
  }

  // The raw bits, so that every double (subnormals, NaNs, -0.0) is as reachable as any
  // other and seeds can name exact values.
  const auto bits = provider.ConsumeIntegral<std::uint64_t>();
  double num = 0;
  std::memcpy(&num, &bits, sizeof num);

  // The integer overload is Python's str(int).
  const auto integer = provider.ConsumeIntegral<std::int64_t>();
  char expected_integer[32];
  std::snprintf(expected_integer, sizeof expected_integer, "%" PRId64, integer);
  FUZZ_CHECK(sky_async::format_float(integer, precision) == expected_integer);

  const bool integral = std::isfinite(num) && std::trunc(num) == num;
  std::string out;
  try {
    out = sky_async::format_float(num, precision);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(precision < 0 && !integral);
    return 0;
  }
  FUZZ_CHECK(precision >= 0 || integral);
  if (std::isnan(num)) {
    FUZZ_CHECK(out == "nan");
    return 0;
  }
  if (std::isinf(num)) {
    FUZZ_CHECK(out == (num < 0 ? "-inf" : "inf"));
    return 0;
  }
  FUZZ_CHECK(out.find_first_not_of("-0123456789.") == std::string::npos);
  if (integral) {
    FUZZ_CHECK(out.find('.') == std::string::npos);
    FUZZ_CHECK(out == printf_fixed(num, 0));
    const double back = std::strtod(out.c_str(), nullptr);
    FUZZ_CHECK(back == num && std::signbit(back) == std::signbit(num));
    return 0;
  }
  FUZZ_CHECK(out == printf_fixed(num, precision));
  const auto point = out.find('.');
  if (precision == 0) {
    FUZZ_CHECK(point == std::string::npos);
  } else {
    FUZZ_CHECK(point != std::string::npos && out.size() - point - 1 == static_cast<std::size_t>(precision));
  }
  if (precision <= 17) {
    // The printed decimal is within half a unit of the last place of the value, and
    // strtod's reading of it within half an ulp of that decimal.
    const double back = std::strtod(out.c_str(), nullptr);
    const double bound =
        0.5 * std::pow(10.0, -precision) * (1 + 1e-9) + std::fabs(std::nextafter(back, HUGE_VAL) - back);
    FUZZ_CHECK(std::fabs(back - num) <= bound);
  }
  return 0;
}
