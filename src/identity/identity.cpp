// Check characters of applicant identifiers:
//   - resident identity number, GB 11643-1999 (ISO 7064 MOD 11-2);
//   - unified social credit code, GB 32100-2015 (MOD 31).
// Messages are meant for applicants and clerks: they say what is wrong and
// where (1-based character positions).

#include <onestop/identity.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace onestop {
namespace {

// One user-visible character of the input: an ASCII byte, a whole UTF-8
// sequence, or a single stray byte when the input is not valid UTF-8.
struct Char {
  std::string_view text;
  bool ascii() const noexcept { return text.size() == 1 && static_cast<unsigned char>(text[0]) < 0x80; }
  char c() const noexcept { return ascii() ? text[0] : '\0'; }
};

std::size_t utf8_length(unsigned char lead) noexcept {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;  // stray continuation byte or invalid lead byte
}

std::vector<Char> split_chars(std::string_view s) {
  std::vector<Char> out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = utf8_length(static_cast<unsigned char>(s[i]));
    bool ok = i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (!ok) n = 1;
    out.push_back(Char{s.substr(i, n)});
    i += n;
  }
  return out;
}

// 'A', a full-width '１' as written, or \x1F for control and stray bytes.
std::string quote(const Char& ch) {
  static constexpr char hex[] = "0123456789ABCDEF";
  if (ch.text.size() == 1) {
    auto b = static_cast<unsigned char>(ch.text[0]);
    if (b < 0x20 || b >= 0x7F) return std::string("byte 0x") + hex[b >> 4] + hex[b & 0xF];
  }
  return "'" + std::string(ch.text) + "'";
}

std::string quote(char c) { return quote(Char{std::string_view(&c, 1)}); }

IdCheck fail(std::string message) {
  IdCheck r;
  r.ok = false;
  r.message = std::move(message);
  return r;
}

IdCheck pass() {
  IdCheck r;
  r.ok = true;
  return r;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// ---------------------------------------------------------------- resident ID

constexpr std::array<int, 17> kResidentWeights{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
constexpr std::string_view kResidentCheckChars = "10X98765432";  // indexed by sum mod 11

constexpr int kEarliestBirth = 18500101;

bool is_leap(int y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) noexcept {
  static constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && is_leap(y)) return 29;
  return days[static_cast<std::size_t>(m - 1)];
}

std::string two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

// ---------------------------------------------------------- credit code

constexpr std::string_view kCreditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
constexpr std::array<int, 17> kCreditWeights{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

int credit_value(char c) noexcept {
  auto pos = kCreditAlphabet.find(c);
  return pos == std::string_view::npos || c == '\0' ? -1 : static_cast<int>(pos);
}

// What a position of the code is for (GB 32100-2015, 4.1).
std::string_view credit_part(std::size_t index) noexcept {
  if (index == 0) return "registration authority code";
  if (index == 1) return "entity type code";
  if (index < 8) return "administrative division code";
  if (index < 17) return "organisation code";
  return "check character";
}

}  // namespace

char resident_id_check_char(std::string_view first17) noexcept {
  if (first17.size() != 17) return '\0';
  int sum = 0;
  for (std::size_t i = 0; i < 17; ++i) {
    if (!is_digit(first17[i])) return '\0';
    sum += (first17[i] - '0') * kResidentWeights[i];
  }
  return kResidentCheckChars[static_cast<std::size_t>(sum % 11)];
}

IdCheck check_resident_id(std::string_view id, int today_yyyymmdd) {
  const std::vector<Char> chars = split_chars(id);
  if (chars.size() != 18) {
    return fail("resident ID number must be 18 characters long, got " + std::to_string(chars.size()));
  }
  for (std::size_t i = 0; i < 17; ++i) {
    if (!chars[i].ascii() || !is_digit(chars[i].c())) {
      return fail("resident ID number has a non-digit " + quote(chars[i]) + " at position " +
                  std::to_string(i + 1) + " (the first 17 characters must be digits)");
    }
  }
  const Char& last = chars[17];
  char check = last.ascii() ? last.c() : '\0';
  if (check == 'x') check = 'X';
  if (!(is_digit(check) || check == 'X')) {
    return fail("resident ID number has an invalid check character " + quote(last) +
                " at position 18 (must be a digit or X)");
  }

  // Digits 7-14: the birth date YYYYMMDD.
  const std::string_view date = id.substr(6, 8);
  const int year = std::stoi(std::string(date.substr(0, 4)));
  const int month = std::stoi(std::string(date.substr(4, 2)));
  const int day = std::stoi(std::string(date.substr(6, 2)));
  const std::string shown = std::string(date.substr(0, 4)) + "-" + std::string(date.substr(4, 2)) +
                            "-" + std::string(date.substr(6, 2));
  if (month < 1 || month > 12) {
    return fail("resident ID number has an impossible birth date " + shown + " (digits 7-14): month " +
                two(month) + " does not exist");
  }
  if (day < 1 || day > days_in_month(year, month)) {
    std::string why = "day " + two(day) + " does not exist in " + std::to_string(year) + "-" + two(month);
    if (month == 2 && day == 29) why = std::to_string(year) + " is not a leap year";
    return fail("resident ID number has an impossible birth date " + shown + " (digits 7-14): " + why);
  }
  const int yyyymmdd = year * 10000 + month * 100 + day;
  if (yyyymmdd < kEarliestBirth) {
    return fail("resident ID number has an impossible birth date " + shown +
                " (digits 7-14): before 1850-01-01");
  }
  if (today_yyyymmdd != 0 && yyyymmdd > today_yyyymmdd) {
    return fail("resident ID number has an impossible birth date " + shown +
                " (digits 7-14): in the future");
  }

  const char expected = resident_id_check_char(id.substr(0, 17));
  if (expected != check) {
    return fail("resident ID number has a wrong check character (expected " + quote(expected) +
                ", got " + quote(last) + ")");
  }
  return pass();
}

char credit_code_check_char(std::string_view first17) noexcept {
  if (first17.size() != 17) return '\0';
  int sum = 0;
  for (std::size_t i = 0; i < 17; ++i) {
    const int v = credit_value(first17[i]);
    if (v < 0) return '\0';
    sum += v * kCreditWeights[i];
  }
  return kCreditAlphabet[static_cast<std::size_t>((31 - sum % 31) % 31)];
}

IdCheck check_credit_code(std::string_view code, CheckMode mode) {
  const std::vector<Char> chars = split_chars(code);
  if (chars.size() != 18) {
    return fail("unified social credit code must be 18 characters long, got " +
                std::to_string(chars.size()));
  }
  for (std::size_t i = 0; i < 18; ++i) {
    const Char& ch = chars[i];
    // Built only for a message: checking a good code allocates nothing here.
    auto where = [i] { return " at position " + std::to_string(i + 1) + " (" + std::string(credit_part(i)) + ")"; };
    const char c = ch.ascii() ? ch.c() : '\0';
    if (i >= 2 && i < 8) {
      if (!is_digit(c)) {
        return fail("unified social credit code has a non-digit " + quote(ch) + where() +
                    ": characters 3-8 must be digits");
      }
      continue;
    }
    if (credit_value(c) >= 0) continue;
    std::string why;
    if (c >= 'a' && c <= 'z') {
      why = ": letters must be upper case";
    } else if (c == 'I' || c == 'O' || c == 'S' || c == 'V' || c == 'Z') {
      why = ": the letters I, O, S, V and Z are not used";
    } else {
      why = ": allowed are 0-9 and A-Z without I, O, S, V, Z";
    }
    return fail("unified social credit code has an invalid character " + quote(ch) + where() + why);
  }

  const char expected = credit_code_check_char(code.substr(0, 17));
  const char got = code[17];
  if (expected != got) {
    std::string message = "unified social credit code has a wrong check character (expected " +
                          quote(expected) + ", got " + quote(got) + ")";
    if (mode == CheckMode::lenient) {
      IdCheck r;
      r.ok = true;
      r.warning = true;
      r.message = message + "; accepted in lenient mode";
      return r;
    }
    return fail(std::move(message));
  }
  return pass();
}

}  // namespace onestop
