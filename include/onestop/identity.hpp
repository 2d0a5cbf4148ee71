#pragma once

// Applicant identifiers and their check characters:
// the 18-digit resident identity number (公民身份号码, GB 11643-1999,
// ISO 7064 MOD 11-2) and the 18-character unified social credit code
// (统一社会信用代码, GB 32100-2015).

#include <string>
#include <string_view>

namespace onestop {

// The result of a check: ok, or what is wrong.
struct IdCheck {
  bool ok = false;
  bool warning = false;  // lenient mode accepted a code whose check character is wrong
  std::string message;   // empty when ok without warning
  explicit operator bool() const noexcept { return ok; }
};

// Checks a resident ID number: 17 digits + check character (0-9 or X,
// upper or lower case accepted), a real birth date in digits 7-14 not in the
// future of `today_yyyymmdd` (0 skips that check), and the MOD 11-2 check.
IdCheck check_resident_id(std::string_view id, int today_yyyymmdd = 0);

// The MOD 11-2 check character for the first 17 digits ('0'-'9' or 'X');
// '\0' when the input is not 17 digits.
char resident_id_check_char(std::string_view first17) noexcept;

// How strictly to treat a wrong unified social credit code check character.
// Some real, legally issued codes fail it: lenient accepts them with a warning.
enum class CheckMode { strict, lenient };

// Checks a unified social credit code: 18 characters from
// 0-9 A-H J-N P-R T U W-Y (no I, O, S, V, Z), and the MOD 31 check character.
IdCheck check_credit_code(std::string_view code, CheckMode mode = CheckMode::strict);

// The check character for the first 17 characters; '\0' when invalid.
char credit_code_check_char(std::string_view first17) noexcept;

}  // namespace onestop
