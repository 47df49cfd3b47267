#include "ignore/patterns.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <string_view>
#include <utility>

namespace sky_async::ignore {

namespace {

constexpr unsigned char slash = '/';
constexpr unsigned char backslash = '\\';

std::bitset<256> bytes_of(std::string_view members) {
  std::bitset<256> set;
  for (const char c : members) set.set(static_cast<unsigned char>(c));
  return set;
}

std::bitset<256> byte_range(unsigned low, unsigned high) {
  std::bitset<256> set;
  for (unsigned c = low; c <= high; ++c) set.set(c);
  return set;
}

// git's character classes, on ASCII bytes only (git has its own ctype table; the C
// library's locale plays no part).
bool class_members(std::string_view name, std::bitset<256>& out) {
  static const std::array<std::pair<std::string_view, std::bitset<256>>, 12> classes = {{
      {"alnum", bytes_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")},
      {"alpha", bytes_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")},
      {"blank", bytes_of(" \t")},
      {"cntrl", byte_range(0, 31) | byte_range(127, 127)},
      {"digit", bytes_of("0123456789")},
      {"graph", byte_range(33, 126)},
      {"lower", bytes_of("abcdefghijklmnopqrstuvwxyz")},
      {"print", byte_range(32, 126)},
      {"punct", bytes_of("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")},
      {"space", bytes_of(" \t\n\r")},
      {"upper", bytes_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ")},
      {"xdigit", bytes_of("0123456789ABCDEFabcdef")},
  }};
  for (const auto& [known, members] : classes) {
    if (known == name) {
      out |= members;
      return true;
    }
  }
  return false;
}

bool has_special(std::string_view text) { return text.find_first_of("*?[\\") != std::string_view::npos; }

}  // namespace

wildmatch::wildmatch(std::string_view pattern, bool pathname) : valid_(compile(pattern, pathname)) {}

std::uint16_t wildmatch::add_set(const std::bitset<256>& set) {
  for (std::size_t k = 0; k < sets_.size(); ++k) {
    if (sets_[k] == set) return static_cast<std::uint16_t>(k);
  }
  sets_.push_back(set);
  return static_cast<std::uint16_t>(sets_.size() - 1);
}

std::size_t wildmatch::bracket(std::string_view pattern, std::size_t start, bool pathname) {
  const std::size_t end = pattern.size();
  std::size_t index = start + 1;
  const bool negated = index < end && (pattern[index] == '!' || pattern[index] == '^');
  if (negated) ++index;
  std::bitset<256> members;
  unsigned previous = 0;  // the last single member, which a following '-' makes a range's start
  bool first = true;      // a ']' first is a member, not the end
  while (true) {
    if (index >= end) return 0;
    auto c = static_cast<unsigned char>(pattern[index]);
    if (c == ']' && !first) break;
    first = false;
    if (c == backslash) {
      if (++index >= end) return 0;
      c = static_cast<unsigned char>(pattern[index]);
      members.set(c);
      previous = c;
    } else if (c == '-' && previous != 0 && index + 1 < end && pattern[index + 1] != ']') {
      auto high = static_cast<unsigned char>(pattern[++index]);
      if (high == backslash) {
        if (++index >= end) return 0;
        high = static_cast<unsigned char>(pattern[index]);
      }
      if (high >= previous) members |= byte_range(previous, high);
      previous = 0;
    } else if (c == '[' && index + 1 < end && pattern[index + 1] == ':') {
      const std::size_t close = pattern.find(']', index + 2);
      if (close == std::string_view::npos) return 0;
      if (close < index + 3 || pattern[close - 1] != ':') {
        members.set(c);  // no ':]' before the next ']': a plain '['
        previous = c;
      } else {
        if (!class_members(pattern.substr(index + 2, close - 1 - (index + 2)), members)) return 0;
        previous = 0;
        index = close;
      }
    } else {
      members.set(c);
      previous = c;
    }
    ++index;
  }
  if (negated) members.flip();
  if (pathname) members.reset(slash);
  steps_.push_back({op::one_of, 0, add_set(members)});
  return index + 1;
}

bool wildmatch::compile(std::string_view pattern, bool pathname) {
  std::bitset<256> any;
  any.set();
  std::bitset<256> not_slash = any;
  not_slash.reset(slash);
  const std::size_t end = pattern.size();
  std::size_t index = 0;
  while (index < end) {
    const auto c = static_cast<unsigned char>(pattern[index]);
    if (c == backslash) {
      if (index + 1 >= end) return false;  // a final backslash matches nothing
      steps_.push_back({op::byte, static_cast<unsigned char>(pattern[index + 1]), 0});
      index += 2;
    } else if (c == '?') {
      steps_.push_back({op::one_of, 0, add_set(pathname ? not_slash : any)});
      ++index;
    } else if (c == '*') {
      std::size_t stop = index;
      while (stop < end && pattern[stop] == '*') ++stop;
      // '**' is special only as a whole component (the byte before it a '/', the one
      // after a '/' or an escaped one); otherwise it is one '*'.
      const bool whole = stop - index >= 2 && (index == 0 || pattern[index - 1] == '/') &&
                         (stop == end || pattern[stop] == '/' || pattern.substr(stop, 2) == "\\/");
      if (whole && stop < end && pattern[stop] == '/') {
        steps_.push_back({op::dirs_open, 0, 0});
        steps_.push_back({op::dirs_in, 0, 0});
        index = stop + 1;
        continue;
      }
      steps_.push_back({op::many, 0, add_set(whole || !pathname ? any : not_slash)});
      index = stop;
    } else if (c == '[') {
      index = bracket(pattern, index, pathname);
      if (index == 0) return false;
    } else {
      steps_.push_back({op::byte, c, 0});
      ++index;
    }
  }
  return steps_.size() < std::numeric_limits<std::uint16_t>::max();
}

// A set of steps (NFA states) is carried across the text, so the time is the text's
// length times the steps', never exponential. Every jump that reads no byte goes forward,
// so one pass in step order closes a set.
bool wildmatch::matches(std::string_view text) const {
  if (!valid_) return false;
  const std::size_t count = steps_.size();
  // One flag per step, and one for "matched the whole pattern"; small patterns use the stack.
  constexpr std::size_t inline_size = 64;
  std::array<unsigned char, 2 * inline_size> inline_flags{};
  std::vector<unsigned char> heap_flags;
  unsigned char* current = inline_flags.data();
  unsigned char* next = current + inline_size;
  if (count + 1 > inline_size) {
    heap_flags.assign(2 * (count + 1), 0);
    current = heap_flags.data();
    next = current + count + 1;
  }
  auto close = [&](unsigned char* flags) {
    for (std::size_t k = 0; k < count; ++k) {
      if (!flags[k]) continue;
      if (steps_[k].kind == op::many) {
        flags[k + 1] = 1;
      } else if (steps_[k].kind == op::dirs_open) {
        flags[k + 1] = 1;
        flags[k + 2] = 1;
      }
    }
  };
  current[0] = 1;
  close(current);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    bool alive = false;
    std::fill(next, next + count + 1, 0);
    for (std::size_t k = 0; k < count; ++k) {
      if (!current[k]) continue;
      const step& s = steps_[k];
      bool reads = false;      // whether the step reads the byte
      std::size_t to = k + 1;  // and the step it then leads to
      switch (s.kind) {
        case op::byte:
          reads = c == s.byte;
          break;
        case op::one_of:
          reads = sets_[s.set].test(c);
          break;
        case op::many:
          reads = sets_[s.set].test(c);
          to = k;
          break;
        case op::dirs_open:
          break;
        case op::dirs_in:
          reads = true;
          to = k;
          if (c == slash) next[k + 1] = 1;
          break;
      }
      if (reads) {
        next[to] = 1;
        alive = true;
      }
    }
    if (!alive) return false;
    close(next);
    std::swap(current, next);
  }
  return current[count] != 0;
}

bool pattern::hits(std::string_view path, std::string_view name) const {
  switch (how) {
    case test::never:
      return false;
    case test::name_equal:
      return name == literal;
    case test::name_suffix:
      return name.ends_with(literal);
    case test::name_match:
      return matcher.matches(name);
    case test::path_equal:
      return path == literal;
    case test::path_match:
      return path.starts_with(literal) && matcher.matches(path.substr(literal.size()));
  }
  return false;
}

pattern compile_line(std::string_view line, std::string_view base) {
  pattern out;
  std::string_view body = line;
  out.negative = body.starts_with('!');
  if (out.negative) body.remove_prefix(1);
  out.directory_only = body.ends_with('/');
  if (out.directory_only) body.remove_suffix(1);
  out.basename_only = body.find('/') == std::string_view::npos;
  if (!out.basename_only && body.starts_with('/')) body.remove_prefix(1);
  out.matcher = wildmatch(body, !out.basename_only);
  std::string prefix;
  if (!base.empty()) {
    prefix.assign(base);
    prefix += '/';
  }
  // The same decisions without wildmatch where the pattern allows it. A name has no '/',
  // so a name pattern's '*' (which may cross '/') is any run of bytes in it.
  if (!out.matcher.valid()) {
    out.how = pattern::test::never;
  } else if (!has_special(body)) {
    out.how = out.basename_only ? pattern::test::name_equal : pattern::test::path_equal;
    out.literal = out.basename_only ? std::string(body) : prefix + std::string(body);
  } else if (out.basename_only && body.starts_with('*') && !has_special(body.substr(1))) {
    out.how = pattern::test::name_suffix;
    out.literal = body.substr(1);
  } else if (out.basename_only) {
    out.how = pattern::test::name_match;
  } else {
    out.how = pattern::test::path_match;
    out.literal = std::move(prefix);
  }
  return out;
}

namespace {

// Unescaped trailing spaces go; a final backslash keeps the whole line.
std::string_view trim_trailing_spaces(std::string_view line) {
  const std::size_t end = line.size();
  std::size_t cut = std::string_view::npos;
  for (std::size_t index = 0; index < end; ++index) {
    const char c = line[index];
    if (c == ' ') {
      if (cut == std::string_view::npos) cut = index;
    } else if (c == '\\') {
      if (++index >= end) return line;
      cut = std::string_view::npos;
    } else {
      cut = std::string_view::npos;
    }
  }
  return cut == std::string_view::npos ? line : line.substr(0, cut);
}

}  // namespace

std::vector<pattern> parse(std::string_view data, std::string_view base) {
  if (data.starts_with("\xef\xbb\xbf")) data.remove_prefix(3);
  std::vector<pattern> out;
  while (!data.empty()) {
    const std::size_t newline = data.find('\n');
    std::string_view line = data.substr(0, newline);
    data.remove_prefix(newline == std::string_view::npos ? data.size() : newline + 1);
    if (line.empty() || line.starts_with('#')) continue;
    if (line.ends_with('\r')) line.remove_suffix(1);
    out.push_back(compile_line(trim_trailing_spaces(line), base));
  }
  return out;
}

}  // namespace sky_async::ignore
