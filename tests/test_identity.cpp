// Check characters of resident ID numbers (GB 11643-1999) and unified social
// credit codes (GB 32100-2015).
//
// Hand cross-checks of two vectors (so the tests do not merely restate the code):
//
//   34052419800101001X: digits 3 4 0 5 2 4 1 9 8 0 0 1 0 1 0 0 1
//     x weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
//     = 21+36+0+25+16+16+2+9+48+0+0+9+0+5+0+0+2 = 189; 189 mod 11 = 2 -> 'X'.
//   440524188001010014 (the example of GB 11643-1999 itself):
//     28+36+0+25+16+16+2+8+48+0+0+9+0+5+0+0+2 = 195; 195 mod 11 = 8 -> '4'.
//
//   91110000600037341L: values 9 1 1 1 0 0 0 0 6 0 0 0 3 7 3 4 1
//     x weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
//     = 9+3+9+27+0+0+0+0+120+0+0+0+24+168+30+120+28 = 538;
//     538 mod 31 = 11; 31 - 11 = 20 -> alphabet[20] = 'L'.
//   12100000400000263P: 1+6+9+80+20+180+84 = 380; 380 mod 31 = 8;
//     31 - 8 = 23 -> alphabet[23] = 'P'.

#include <onestop/identity.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using onestop::check_credit_code;
using onestop::check_resident_id;
using onestop::CheckMode;
using onestop::credit_code_check_char;
using onestop::resident_id_check_char;

namespace {

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_SUITE("identity") {

TEST_CASE("resident ID: valid numbers") {
  const char* valid[] = {
      "34052419800101001X",  // DOMAIN.md; hand-checked above
      "34052419800101001x",  // lower-case x accepted
      "440524188001010014",  // GB 11643-1999 example; hand-checked above
      "11010519491231002X",  // widely published example
      "110105194912310011",
      "310115198503154570",
      "510107199912318881",  // sum mod 11 = 0 -> '1'
      "360203197211060032",  // sum mod 11 = 10 -> '2'
      "320583198505190129",
      "330106199007071233",
      "440301198808080017",
      "650102185001010001",  // 1850-01-01: the earliest accepted birth date
      "110101185001010050",
      "11010120000229123X",  // 2000 is a leap year (divisible by 400)
      "210202202402295613",  // 2024-02-29
      "130102199602290032",  // 1996-02-29
      "110101199602290075",
      "110101199902280063",
      "620102197001010020",
      "450102200308150047",
      "530102198711040083",
      "530102198711040075",
      "530102198711040059",
      "110101202402290016",
  };
  for (const char* id : valid) {
    CAPTURE(id);
    const auto r = check_resident_id(id);
    CHECK(r.ok);
    CHECK(static_cast<bool>(r));
    CHECK_FALSE(r.warning);
    CHECK(r.message.empty());
    // With a "today" well after every birth date too.
    CHECK(check_resident_id(id, 20261123).ok);
  }
}

TEST_CASE("resident ID: check character computation") {
  CHECK(resident_id_check_char("34052419800101001") == 'X');
  CHECK(resident_id_check_char("44052418800101001") == '4');
  CHECK(resident_id_check_char("51010719991231888") == '1');  // mod 11 = 0
  CHECK(resident_id_check_char("36020319721106003") == '2');  // mod 11 = 10
  CHECK(resident_id_check_char("31011519850315457") == '0');  // mod 11 = 1
  CHECK(resident_id_check_char("") == '\0');
  CHECK(resident_id_check_char("3405241980010100") == '\0');    // 16 digits
  CHECK(resident_id_check_char("340524198001010011") == '\0');  // 18 digits
  CHECK(resident_id_check_char("3405241980010100A") == '\0');
}

TEST_CASE("resident ID: wrong length") {
  for (std::string_view id : {"", "3405241980010100", "34052419800101001X1", "340524800101001"}) {
    CAPTURE(id);
    const auto r = check_resident_id(id);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.warning);
    CHECK(contains(r.message, "18 characters"));
    CHECK(contains(r.message, "got " + std::to_string(id.size())));
  }
  // Length counts characters, not bytes: 17 digits and a full-width X.
  const auto r = check_resident_id("34052419800101001\xEF\xBC\xB8");
  CHECK_FALSE(r.ok);
  CHECK(contains(r.message, "position 18"));
}

TEST_CASE("resident ID: non-digit in the first 17") {
  {
    const auto r = check_resident_id("3405A419800101001X");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "non-digit 'A' at position 5"));
  }
  {
    const auto r = check_resident_id("X40524198001010010");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 1"));
  }
  {
    const auto r = check_resident_id("3405241980010100X1");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 17"));
  }
  {
    const auto r = check_resident_id("34052419800101 01X");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 15"));
  }
  {
    // A full-width digit is not a digit; position counts characters.
    const auto r = check_resident_id("\xEF\xBC\x93" "4052419800101001X");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 1"));
  }
  {
    const auto r = check_resident_id(std::string("34052\0" "19800101001X", 18));
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 6"));
    CHECK(contains(r.message, "0x00"));
  }
}

TEST_CASE("resident ID: bad check character symbol") {
  for (std::string_view id : {"34052419800101001Y", "34052419800101001-", "34052419800101001 "}) {
    CAPTURE(id);
    const auto r = check_resident_id(id);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 18"));
    CHECK(contains(r.message, "digit or X"));
  }
}

TEST_CASE("resident ID: impossible birth dates") {
  struct Case {
    const char* id;
    const char* says;
  };
  const Case cases[] = {
      {"110101190002291233", "1900 is not a leap year"},  // divisible by 100, not by 400
      {"110101198102301239", "day 30 does not exist in 1981-02"},
      {"110101198101321238", "day 32"},
      {"110101198101001234", "day 00"},
      {"11010120250631123X", "day 31 does not exist in 2025-06"},
      {"110101198113011237", "month 13"},
      {"110101198100011230", "month 00"},
      {"110101184912311239", "before 1850-01-01"},
      {"110101000001011234", "before 1850-01-01"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.id);
    const auto r = check_resident_id(c.id);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "impossible birth date"));
    CHECK(contains(r.message, c.says));
  }
  // The date is reported with its digits as written.
  CHECK(contains(check_resident_id("110101198102301239").message, "1981-02-30"));
}

TEST_CASE("resident ID: birth date in the future of today") {
  // Born 2026-11-24; 2026-11-23 is the day before.
  CHECK(check_resident_id("11010420261124009X").ok);  // no today given: not checked
  {
    const auto r = check_resident_id("11010420261124009X", 20261123);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "impossible birth date"));
    CHECK(contains(r.message, "future"));
  }
  CHECK(check_resident_id("11010420261124009X", 20261124).ok);  // born today
  CHECK(check_resident_id("110104202611230086", 20261123).ok);
  CHECK_FALSE(check_resident_id("210202202402295613", 20240228).ok);
  CHECK(check_resident_id("210202202402295613", 20240229).ok);
}

TEST_CASE("resident ID: wrong check character") {
  {
    const auto r = check_resident_id("340524198001010013");
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.warning);
    CHECK(contains(r.message, "wrong check character"));
    CHECK(contains(r.message, "expected 'X', got '3'"));
  }
  {
    const auto r = check_resident_id("440524188001010015");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "expected '4', got '5'"));
  }
  {
    // An x where a digit belongs.
    const auto r = check_resident_id("44052418800101001x");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "expected '4', got 'x'"));
  }
  {
    // Two digits swapped: the check character catches transpositions.
    const auto r = check_resident_id("340524198001010101");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "wrong check character"));
  }
  // Every wrong check character of a valid number is refused.
  const std::string base = "44052418800101001";
  for (char c : std::string_view("0123456789X")) {
    const bool ok = check_resident_id(base + c).ok;
    CHECK(ok == (c == '4'));
  }
}

TEST_CASE("credit code: valid codes") {
  const char* valid[] = {
      "91110000600037341L",  // DOMAIN.md; hand-checked above
      "12100000400000263P",  // hand-checked above
      "91350100M000100Y43",  // widely published example
      "91330000MA27U0BE3W",
      "51110000500000000B",
      "91440300MA5G9GYG6G",
      "113301000024918342",
      "93330106MA2CF1234E",
      "N2110108MA01A1B2CN",
      "311100004000000015",
      "92440101MA59A1B2C3",
      "91310000MA1FL1234Q",
  };
  for (const char* code : valid) {
    CAPTURE(code);
    for (auto mode : {CheckMode::strict, CheckMode::lenient}) {
      const auto r = check_credit_code(code, mode);
      CHECK(r.ok);
      CHECK_FALSE(r.warning);
      CHECK(r.message.empty());
    }
  }
}

TEST_CASE("credit code: check character computation") {
  CHECK(credit_code_check_char("91110000600037341") == 'L');
  CHECK(credit_code_check_char("12100000400000263") == 'P');
  CHECK(credit_code_check_char("91350100M000100Y4") == '3');
  CHECK(credit_code_check_char("") == '\0');
  CHECK(credit_code_check_char("9111000060003734") == '\0');    // 16
  CHECK(credit_code_check_char("91110000600037341L") == '\0');  // 18
  CHECK(credit_code_check_char("9111000060003734I") == '\0');   // I is not in the alphabet
  CHECK(credit_code_check_char("9111000060003734l") == '\0');   // lower case
  // A sum that is a multiple of 31 gives '0' (the outer mod 31).
  CHECK(credit_code_check_char("00000000000000000") == '0');
  CHECK(onestop::check_credit_code("000000000000000000").ok);
}

TEST_CASE("credit code: wrong length") {
  for (std::string_view code : {"", "91110000600037341", "91110000600037341L0", "9111"}) {
    CAPTURE(code);
    const auto r = check_credit_code(code, CheckMode::lenient);  // lenient does not excuse it
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "18 characters"));
    CHECK(contains(r.message, "got " + std::to_string(code.size())));
  }
}

TEST_CASE("credit code: registration authority and entity type") {
  {
    const auto r = check_credit_code("I1110000600037341L");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "'I' at position 1"));
    CHECK(contains(r.message, "registration authority"));
    CHECK(contains(r.message, "I, O, S, V and Z"));
  }
  {
    const auto r = check_credit_code("9Z110000600037341L", CheckMode::lenient);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 2"));
    CHECK(contains(r.message, "entity type"));
  }
  {
    const auto r = check_credit_code("-1110000600037341L");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 1"));
  }
}

TEST_CASE("credit code: administrative division code must be digits") {
  {
    const auto r = check_credit_code("911A0000600037341L");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "non-digit 'A' at position 4"));
    CHECK(contains(r.message, "administrative division"));
  }
  {
    const auto r = check_credit_code("9111000M600037341L", CheckMode::lenient);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 8"));
  }
  {
    const auto r = check_credit_code("91X10000600037341L");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "position 3"));
  }
}

TEST_CASE("credit code: characters outside the alphabet") {
  struct Case {
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {"91110000O00037341L", "'O' at position 9"},
      {"91110000600037S41L", "'S' at position 15"},
      {"91110000600037341V", "'V' at position 18"},
      {"91110000600037341Z", "'Z' at position 18"},
      {"91110000600037341l", "upper case"},
      {"9111000060003734-L", "position 17"},
      {"91110000600037341\xEF\xBC\xAC", "position 18"},  // full-width L
  };
  for (const auto& c : cases) {
    CAPTURE(c.code);
    const auto r = check_credit_code(c.code, CheckMode::lenient);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.warning);
    CHECK(contains(r.message, c.says));
  }
}

TEST_CASE("credit code: wrong check character, strict and lenient") {
  {
    const auto r = check_credit_code("91110000600037341M");
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.warning);
    CHECK(contains(r.message, "wrong check character"));
    CHECK(contains(r.message, "expected 'L', got 'M'"));
  }
  {
    const auto r = check_credit_code("91110000600037341M", CheckMode::lenient);
    CHECK(r.ok);
    CHECK(static_cast<bool>(r));
    CHECK(r.warning);
    CHECK(contains(r.message, "expected 'L', got 'M'"));
    CHECK(contains(r.message, "lenient"));
  }
  {
    // The code printed in docs/yaml-reference.md's department example: its
    // check character should be '2'.
    const auto r = check_credit_code("11330100002491834U");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.message, "expected '2', got 'U'"));
  }
  // Every other check character fails strictly and warns leniently.
  const std::string base = "12100000400000263";
  for (char c : std::string_view("0123456789ABCDEFGHJKLMNPQRTUWXY")) {
    CAPTURE(c);
    const auto strict = check_credit_code(base + c);
    const auto lenient = check_credit_code(base + c, CheckMode::lenient);
    CHECK(strict.ok == (c == 'P'));
    CHECK(lenient.ok);
    CHECK(lenient.warning == (c != 'P'));
  }
}

}  // TEST_SUITE
