// SkyPilot's string helpers: exact results from Python (the tables were produced by
// CPython running SkyPilot's definitions), base36 against a simple independent
// reference on generated inputs, and the inputs Python rejects.
#include <sky_async/strings.hpp>  // first: the header must compile on its own

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using sky_async::base36_encode;
using sky_async::format_float;
using sky_async::truncate_long_string;

// --- base36_encode ---------------------------------------------------------------------------

TEST(Base36Encode, SkyPilotExamples) {
  EXPECT_EQ(base36_encode("ff"), "73");
  EXPECT_EQ(base36_encode("0x10"), "g");
  EXPECT_EQ(base36_encode("100"), "74");
  EXPECT_EQ(base36_encode("23"), "z");
  EXPECT_EQ(base36_encode("24"), "10");
  EXPECT_EQ(base36_encode("0"), "0");
  EXPECT_EQ(base36_encode("de_ad"), "17zh");
  EXPECT_EQ(base36_encode("deadbeef"), "1ps9wxb");
}

TEST(Base36Encode, AcceptsWhatPythonIntAccepts) {
  for (const char* text : {"  FF\n", "0XfF", "+ff", "0x_ff", "\t+0X_f_f \v", "0000ff",
                           "\xe3\x80\x80"
                           "ff"
                           "\xe2\x80\xa8",
                           "\xc2\x85"
                           "ff"}) {
    EXPECT_EQ(base36_encode(text), "73") << text;
  }
  EXPECT_EQ(base36_encode("-0"), "0");
  EXPECT_EQ(base36_encode("-0x0"), "0");
}

TEST(Base36Encode, RejectsWhatPythonIntRejects) {
  for (const char* text :
       {"", " ", "0x", "0x_", "xyz", "1 2", "_1", "1_", "1__2", "0_x10", "g", "0x0x10", "+-1",
        "\x1c"
        "ff",
        "ff\x1f", "\xef\xbc\x91" /* fullwidth 1: Python accepts */}) {
    EXPECT_THROW(base36_encode(text), std::invalid_argument) << '"' << text << '"';
  }
}

TEST(Base36Encode, RejectsNegativeValuesInsteadOfLoopingForever) {
  try {
    base36_encode("-ff");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("non-negative"), std::string::npos) << e.what();
  }
}

// The reference: hex digits to base 36 by schoolbook long division, one digit at a time.
std::string reference_base36(std::string hex) {
  std::vector<int> digits;
  for (char c : hex) digits.push_back(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  std::string out;
  for (;;) {
    while (!digits.empty() && digits.front() == 0) digits.erase(digits.begin());
    if (digits.empty()) break;
    int remainder = 0;
    for (int& d : digits) {
      const int current = remainder * 16 + d;
      d = current / 36;
      remainder = current % 36;
    }
    out += "0123456789abcdefghijklmnopqrstuvwxyz"[remainder];
  }
  if (out.empty()) return "0";
  std::reverse(out.begin(), out.end());
  return out;
}

// And back: base 36 to lower-case hex without leading zeros.
std::string reference_hex(const std::string& base36) {
  std::vector<int> hex{0};  // least significant first
  for (char c : base36) {
    int carry = c <= '9' ? c - '0' : c - 'a' + 10;
    for (int& d : hex) {
      const int current = d * 36 + carry;
      d = current % 16;
      carry = current / 16;
    }
    for (; carry; carry /= 16) hex.push_back(carry % 16);
  }
  while (hex.size() > 1 && hex.back() == 0) hex.pop_back();
  std::string out;
  for (auto it = hex.rbegin(); it != hex.rend(); ++it) out += "0123456789abcdef"[*it];
  return out;
}

TEST(Base36Encode, AgreesWithAReferenceAndRoundTripsOnGeneratedInputs) {
  std::mt19937_64 random(36);
  for (int round = 0; round < 2000; ++round) {
    // Lengths across the limb boundaries, up to SHA-512 and beyond; both cases of letters.
    const std::size_t length = 1 + random() % (round < 1000 ? 40 : 300);
    std::string hex;
    for (std::size_t i = 0; i < length; ++i) hex += "0123456789abcdefABCDEF"[random() % 22];
    if (round % 7 == 0) hex.insert(0, std::string(random() % 12, '0'));
    const std::string encoded = base36_encode(hex);
    ASSERT_EQ(encoded, reference_base36(hex)) << hex;
    std::string lower = hex;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return static_cast<char>(c | 0x20); });
    const auto first = lower.find_first_not_of('0');
    ASSERT_EQ(reference_hex(encoded), first == std::string::npos ? "0" : lower.substr(first)) << hex;
    ASSERT_TRUE(encoded == "0" || encoded.front() != '0') << encoded;
  }
}

TEST(Base36Encode, Sha512WidthValues) {
  EXPECT_EQ(base36_encode(std::string(128, 'f')), reference_base36(std::string(128, 'f')));
  EXPECT_EQ(reference_hex(base36_encode(std::string(128, 'f'))), std::string(128, 'f'));
}

// --- format_float ----------------------------------------------------------------------------

struct format_case {
  double num;
  int precision;
  const char* expected;
};

const format_case format_cases[] = {
    {2.0, 1, "2"},
    {-0.0, 1, "-0"},
    {1e+20, 1, "100000000000000000000"},
    {2.25, 1, "2.2"},
    {2.35, 1, "2.4"},
    {2.675, 2, "2.67"},
    {2.5, 0, "2"},
    {3.5, 0, "4"},
    {0.96, 1, "1.0"},
    {9.999, 2, "10.00"},
    {1e-07, 2, "0.00"},
    {-1e-07, 2, "-0.00"},
    {0.5, 1, "0.5"},
    {1234567.89, 2, "1234567.89"},
    {0.125, 2, "0.12"},
    {0.375, 2, "0.38"},
    {-2.5, 0, "-2"},
    {1e+300, 1,
     "1000000000000000052504760255204420248704468581108159154915854115511802457988908195786371375080447864043"
     "7044438328838781769425232353604305756447921847867069828483872009265758037378302337947880900593689532349"
     "70799945081119038967640880074652742780142494579258788820056842838115669472196386865459400540160"},
    {5e-324, 3, "0.000"},
    {5e-324, 330,
     "0."
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000004940656"},
    {0.1, 20, "0.10000000000000000555"},
    {1.5, 0, "2"},
    {-1.5, 0, "-2"},
    {123.456, 0, "123"},
    {1.0000000000000002e+16, 1, "10000000000000002"},
    {9007199254740992.0, 1, "9007199254740992"},
    {1.7976931348623157e+308, 1,
     "1797693134862315708145274237317043567980705675258449965989174768031572607800285387605895586327668781715"
     "4045895351438246423432132688946418276846754670353751698604991057655128207624549009038932894407586850845"
     "513394230458323690322294816580855933212334827479782620414472316873817718091929988125040402618412485836"
     "8"},
    {0.05, 1, "0.1"},
    {0.15, 1, "0.1"},
    {0.25, 1, "0.2"},
    {0.35, 1, "0.3"},
    {1e-05, 6, "0.000010"},
    {-0.0001, 3, "-0.000"},
    {1e+22, 3, "10000000000000000000000"},
    {123456789.12345679, 5, "123456789.12346"},
    {2.0, -3, "2"},
    {4.0, 7, "4"},
};

TEST(FormatFloat, MatchesPythonTable) {
  for (const auto& c : format_cases) {
    EXPECT_EQ(format_float(c.num, c.precision), c.expected) << c.num << " precision " << c.precision;
  }
}

TEST(FormatFloat, NonFiniteValues) {
  EXPECT_EQ(format_float(HUGE_VAL), "inf");
  EXPECT_EQ(format_float(-HUGE_VAL, 3), "-inf");
  EXPECT_EQ(format_float(std::nan("")), "nan");
  EXPECT_EQ(format_float(-std::nan("")), "nan");
}

TEST(FormatFloat, IntegersAreTheirDecimalDigits) {
  EXPECT_EQ(format_float(4), "4");
  EXPECT_EQ(format_float(-17, 5), "-17");
  EXPECT_EQ(format_float(9223372036854775807LL), "9223372036854775807");
  EXPECT_EQ(format_float(18446744073709551615ULL), "18446744073709551615");
  EXPECT_EQ(format_float(true), "True");
  EXPECT_EQ(format_float(false), "False");
}

TEST(FormatFloat, NegativePrecisionIsRejectedOnlyForNonIntegralValues) {
  EXPECT_THROW(format_float(2.5, -1), std::invalid_argument);
  EXPECT_THROW(format_float(HUGE_VAL, -1), std::invalid_argument);
  EXPECT_EQ(format_float(2.0, -1), "2");
  EXPECT_EQ(format_float(7, -1), "7");
}

// --- truncate_long_string --------------------------------------------------------------------

struct truncate_case {
  const char* text;
  long long max_length;
  bool middle;
  const char* expected;
};

const truncate_case truncate_cases[] = {
    {"short string", 15, false, "short string"},
    {"this is a very long string that needs truncation", 20, false, "this is a very long ..."},
    {"us-west-2-availability-zone-1", 20, true, "us-west-2...y-zone-1"},
    {"us-west-2-availability-zone-1", 15, true, "us-wes...zone-1"},
    {"us-west-2-availability-zone-1", 3, true, "..."},
    {"", 10, false, ""},
    {"abcde", 5, true, "abcde"},
    {"abcde", 4, true, "a..."},
    {"abcdefghijklmnopqrstuvwxyz", 10, true, "abcd...xyz"},
    {"abcdefghijklmnopqrstuvwxyz", 11, true, "abcd...wxyz"},
    {"aa bb cc dd ee ff", 7, false, "aa bb cc..."},
    {"one two three four five six seven eight nine ten eleven", 35, false,
     "one two three four five six seven eight..."},
    {"abc", -1, false, "ab..."},
    {"abc", -1, true, "..."},
    {"abc", 0, false, "..."},
    {" abc", 0, false, "..."},
    {"abc", -10, false, "..."},
    {"héllo wörld ünïcode façade", 8, false, "héllo wö..."},
    {"日本語のテキストです 長い 文字列", 5, false, "日本語のテ..."},
    {"日本語のテキストです 長い 文字列", 12, false, "日本語のテキストです 長..."},
    {"日本語 テキスト 文字列 です", 6, false, "日本語 テキ..."},
    {"ζωή και θάνατος καλημέρα", 9, true, "ζωή...έρα"},
    {"ζωή και θάνατος καλημέρα", 10, true, "ζωή ...έρα"},
    {"🙂🙃😉😊😇🥰😍🤩", 5, true, "🙂...🤩"},
    {"🙂🙃😉😊😇🥰😍🤩", 5, false, "🙂🙃😉😊😇..."},
    {"a  b  c  d  e  f", 4, false, "a  b  c ..."},
    {"word word word word word word word word word word ", 12, false, "word word wo..."},
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 35, false, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."},
    {"ab cd", -2, false, "..."},
    {"ünïcode", -3, false, "ünïc..."},
    {"tab\tseparated words here", 5, false, "tab\ts..."},
    {"ends with space ", 10, false, "ends with ..."},
};

TEST(TruncateLongString, MatchesPythonTableIncludingMultibyteText) {
  for (const auto& c : truncate_cases) {
    EXPECT_EQ(truncate_long_string(c.text, c.max_length, c.middle), c.expected)
        << '"' << c.text << "\" " << c.max_length << (c.middle ? " middle" : " end");
  }
}

TEST(TruncateLongString, DefaultsAreThirtyFiveAndEndMode) {
  const std::string text(40, 'x');
  EXPECT_EQ(truncate_long_string(text), std::string(35, 'x') + "...");
}

TEST(TruncateLongString, LengthsCountCodePointsNotBytes) {
  // 10 code points, 30 bytes: fits a limit of 10.
  const std::string ten =
      "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6"
      "\x97\xa5\xe6\x97\xa5";
  EXPECT_EQ(truncate_long_string(ten, 10), ten);
  EXPECT_EQ(truncate_long_string(ten, 9), ten.substr(0, 27) + "...");
  EXPECT_EQ(truncate_long_string(ten, 6, true), ten.substr(0, 6) + "..." + ten.substr(27));
}

TEST(TruncateLongString, InvalidUtf8IsRejected) {
  for (std::string_view bad :
       {std::string_view("\xff"), std::string_view("abc\xc3"), std::string_view("\xc0\xaf"),
        std::string_view("\xed\xa0\x80"), std::string_view("\xf4\x90\x80\x80")}) {
    EXPECT_THROW(truncate_long_string(bad, 1), std::invalid_argument);
  }
}

}  // namespace
