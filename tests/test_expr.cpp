#include <doctest/doctest.h>

#include <map>
#include <onestop/error.hpp>
#include <onestop/expr.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using onestop::Error;
using onestop::ErrorCode;
using onestop::Expr;
using onestop::ExprContext;
using onestop::ExprError;
using onestop::ExprScope;
using onestop::Value;

namespace {

// An application as the engine would present it to a guard.
class MapContext : public ExprContext {
 public:
  std::map<std::string, Value, std::less<>> fields;
  std::set<std::string, std::less<>> materials;
  // Reading one of these fails the test: proves short-circuiting.
  std::set<std::string, std::less<>> forbidden;
  mutable int reads = 0;

  Value field(std::string_view path) const override {
    ++reads;
    if (forbidden.count(path) != 0) throw std::logic_error("read " + std::string(path));
    const auto it = fields.find(path);
    return it == fields.end() ? Value() : it->second;
  }
  bool has_material(std::string_view id) const override {
    if (forbidden.count(id) != 0) throw std::logic_error("asked for " + std::string(id));
    return materials.count(id) != 0;
  }
};

ExprScope guard_scope() {
  return ExprScope{{"form", "applicant", "case"},
                   {"outcome", "approved", "rejected", "all_approved", "any_rejected", "approvals",
                    "rejections"}};
}

MapContext sample_application() {
  MapContext c;
  c.fields["form.investment"] = 60000000;
  c.fields["form.industry"] = "chemical";
  c.fields["form.site.district"] = "Pudong";
  c.fields["form.tags"] = Value::List{"export", "hazardous"};
  c.fields["form.name"] = "abc";
  c.fields["form.zero"] = 0;
  c.fields["applicant.kind"] = "legal_person";
  c.fields["applicant.age"] = 17;
  c.fields["outcome"] = "approved";
  c.fields["all_approved"] = true;
  c.fields["approvals"] = 3;
  c.materials = {"business_licence", "id_card"};
  return c;
}

Expr compile_ok(std::string_view text, const ExprScope& scope = guard_scope()) {
  std::vector<ExprError> errors;
  Expr e = Expr::compile(text, scope, errors);
  INFO("expression: " << text.substr(0, 200));
  INFO("first error: " << (errors.empty() ? std::string() : errors.front().message.substr(0, 200)));
  REQUIRE(errors.empty());
  REQUIRE(e.valid());
  return e;
}

Value eval(std::string_view text) {
  const MapContext c = sample_application();
  return compile_ok(text).evaluate(c);
}

std::vector<ExprError> errors_of(std::string_view text, const ExprScope& scope = guard_scope()) {
  std::vector<ExprError> errors;
  const Expr e = Expr::compile(text, scope, errors);
  CHECK_FALSE(e.valid());
  return errors;
}

// The single (first) error of an expression that must not compile.
ExprError error_of(std::string_view text, const ExprScope& scope = guard_scope()) {
  const auto errors = errors_of(text, scope);
  INFO("expression: " << text.substr(0, 200));
  REQUIRE(errors.size() >= 1);
  return errors.front();
}

std::string runtime_error_of(std::string_view text, const MapContext& c) {
  const Expr e = compile_ok(text);
  try {
    e.evaluate(c);
  } catch (const Error& error) {
    CHECK(error.code() == ErrorCode::invalid_input);
    return error.what();
  }
  FAIL("no run-time error for " << text);
  return {};
}

Value list(Value::List items) { return Value(std::move(items)); }

}  // namespace

TEST_CASE("expr: Value") {
  SUBCASE("types and accessors") {
    CHECK(Value().type() == Value::Type::null);
    CHECK(Value(nullptr).is_null());
    CHECK(Value(true).as_bool());
    CHECK(Value(3).as_number() == 3);
    CHECK(Value(2.5).as_number() == 2.5);
    CHECK(Value(7LL).as_number() == 7);
    CHECK(Value("x").as_string() == "x");
    CHECK(Value(std::string_view("sv")).as_string() == "sv");
    CHECK(Value(Value::List{1, "a"}).as_list().size() == 2);
  }
  SUBCASE("accessors throw invalid_input on a type mismatch") {
    CHECK_THROWS_AS(Value("x").as_number(), Error);
    CHECK_THROWS_AS(Value(1).as_string(), Error);
    CHECK_THROWS_AS(Value().as_bool(), Error);
    CHECK_THROWS_AS(Value(true).as_list(), Error);
    try {
      (void)Value("abc").as_number();
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid_input);
      CHECK(std::string(e.what()) == "expected a number, got string \"abc\"");
    }
  }
  SUBCASE("truthiness") {
    CHECK_FALSE(Value().truthy());
    CHECK_FALSE(Value(false).truthy());
    CHECK_FALSE(Value(0).truthy());
    CHECK_FALSE(Value("").truthy());
    CHECK_FALSE(Value(Value::List{}).truthy());
    CHECK(Value(true).truthy());
    CHECK(Value(-1).truthy());
    CHECK(Value("0").truthy());
    CHECK(Value(Value::List{Value()}).truthy());
  }
  SUBCASE("rendering") {
    CHECK(Value().to_string() == "null");
    CHECK(Value(true).to_string() == "true");
    CHECK(Value(12).to_string() == "12");
    CHECK(Value(3.5).to_string() == "3.5");
    CHECK(Value(50000000).to_string() == "50000000");
    CHECK(Value("a\"b\\c\n").to_string() == R"("a\"b\\c\n")");
    CHECK(Value(Value::List{1, "a", Value::List{}}).to_string() == R"([1, "a", []])");
    CHECK(onestop::to_string(Value::Type::null) == "null");
    CHECK(onestop::to_string(Value::Type::boolean) == "bool");
    CHECK(onestop::to_string(Value::Type::number) == "number");
    CHECK(onestop::to_string(Value::Type::string) == "string");
    CHECK(onestop::to_string(Value::Type::list) == "list");
  }
  SUBCASE("equality") {
    CHECK(Value(1) == Value(1.0));
    CHECK_FALSE(Value(1) == Value("1"));
    CHECK_FALSE(Value(1) == Value(true));
    CHECK(Value(Value::List{1, "a"}) == Value(Value::List{1, "a"}));
  }
}

TEST_CASE("expr: literals") {
  SUBCASE("numbers") {
    CHECK(eval("12") == Value(12));
    CHECK(eval("3.5") == Value(3.5));
    CHECK(eval("1e6") == Value(1000000));
    CHECK(eval("2.5E-1") == Value(0.25));
    CHECK(eval("1e+2") == Value(100));
    CHECK(eval("0") == Value(0));
  }
  SUBCASE("percent") {
    CHECK(eval("80%") == Value(0.8));
    CHECK(eval("100%") == Value(1));
    CHECK(eval("12.5%") == Value(0.125));
    CHECK(eval("form.investment * 10%") == Value(6000000));
  }
  SUBCASE("strings in either quote, with escapes") {
    CHECK(eval(R"("chemical")") == Value("chemical"));
    CHECK(eval("'steel'") == Value("steel"));
    CHECK(eval(R"("say \"hi\"")") == Value("say \"hi\""));
    CHECK(eval(R"('it\'s')") == Value("it's"));
    CHECK(eval(R"("a\\b")") == Value("a\\b"));
    CHECK(eval(R"("line\nnext\tcol")") == Value("line\nnext\tcol"));
    CHECK(eval(R"('"' + "'")") == Value("\"'"));
    CHECK(eval(R"("")") == Value(""));
    CHECK(eval(R"("浦东新区")") == Value("浦东新区"));
  }
  SUBCASE("true, false, null") {
    CHECK(eval("true") == Value(true));
    CHECK(eval("false") == Value(false));
    CHECK(eval("null").is_null());
  }
  SUBCASE("lists") {
    CHECK(eval("[]") == list({}));
    CHECK(eval(R"([1, "a", true, null])") == list({1, "a", true, Value()}));
    CHECK(eval("[[1], [2, [3]]]") == list({list({1}), list({2, list({3})})}));
    CHECK(eval("[form.industry, applicant.age + 1]") == list({"chemical", 18}));
  }
}

TEST_CASE("expr: operators") {
  SUBCASE("arithmetic") {
    CHECK(eval("1 + 2") == Value(3));
    CHECK(eval("5 - 7") == Value(-2));
    CHECK(eval("6 * 7") == Value(42));
    CHECK(eval("7 / 2") == Value(3.5));
    CHECK(eval("-3") == Value(-3));
    CHECK(eval("- -3") == Value(3));
    CHECK(eval("2 - -3") == Value(5));
    CHECK(eval("2*-3") == Value(-6));
    CHECK(eval("-form.investment") == Value(-60000000));
  }
  SUBCASE("+ concatenates strings and lists") {
    CHECK(eval(R"("ab" + "cd")") == Value("abcd"));
    CHECK(eval(R"(form.industry + "/" + applicant.kind)") == Value("chemical/legal_person"));
    CHECK(eval("[1] + [2, 3]") == list({1, 2, 3}));
    CHECK(eval(R"(form.tags + ["new"])") == list({"export", "hazardous", "new"}));
  }
  SUBCASE("equality compares any values") {
    CHECK(eval("1 == 1") == Value(true));
    CHECK(eval("1 == 1.0") == Value(true));
    CHECK(eval(R"(1 == "1")") == Value(false));
    CHECK(eval(R"(1 != "1")") == Value(true));
    CHECK(eval("true == 1") == Value(false));
    CHECK(eval("null == null") == Value(true));
    CHECK(eval("form.missing == null") == Value(true));
    CHECK(eval("[1, [2]] == [1, [2]]") == Value(true));
    CHECK(eval(R"(outcome == "approved")") == Value(true));
    CHECK(eval(R"(outcome != "approved")") == Value(false));
  }
  SUBCASE("ordering on numbers and on strings") {
    CHECK(eval("1 < 2") == Value(true));
    CHECK(eval("2 <= 2") == Value(true));
    CHECK(eval("3 > 2") == Value(true));
    CHECK(eval("2 >= 3") == Value(false));
    CHECK(eval(R"("apple" < "banana")") == Value(true));
    CHECK(eval(R"("2024-03-01" >= "2024-01-15")") == Value(true));
    CHECK(eval("form.investment >= 50000000") == Value(true));
  }
  SUBCASE("in and not in") {
    CHECK(eval(R"(form.industry in ["chemical", "steel"])") == Value(true));
    CHECK(eval(R"(form.industry not in ["chemical", "steel"])") == Value(false));
    CHECK(eval(R"("hazardous" in form.tags)") == Value(true));
    CHECK(eval("1 in [1.0, 2]") == Value(true));
    CHECK(eval(R"(1 in ["1"])") == Value(false));
    CHECK(eval(R"("em" in "chemical")") == Value(true));
    CHECK(eval(R"("xyz" not in "chemical")") == Value(true));
    CHECK(eval("null in [1, null]") == Value(true));
    CHECK(eval(R"(null in "abc")") == Value(false));
    CHECK(eval("1 in form.missing") == Value(false));
    CHECK(eval("1 not in form.missing") == Value(true));
  }
  SUBCASE("logic and its aliases") {
    CHECK(eval("true and false") == Value(false));
    CHECK(eval("true && true") == Value(true));
    CHECK(eval("false or true") == Value(true));
    CHECK(eval("false || false") == Value(false));
    CHECK(eval("not true") == Value(false));
    CHECK(eval("!false") == Value(true));
    CHECK(eval("!!1") == Value(true));
    CHECK(eval("not not not 0") == Value(true));
  }
  SUBCASE("and/or return bools, by truthiness") {
    CHECK(eval(R"("x" and 5)") == Value(true));
    CHECK(eval(R"(0 or "")") == Value(false));
    CHECK(eval("[] or [0]") == Value(true));
    CHECK(eval("form.name and form.zero") == Value(false));
    CHECK(eval("form.missing or approvals") == Value(true));
  }
  SUBCASE("keywords are case-sensitive and never prefixes of identifiers") {
    const ExprScope scope{{"form"},
                          {"order", "android", "notable", "inform", "island", "nullable",
                           "trueness", "andy", "or_else"}};
    MapContext c;
    c.fields["order"] = 1;
    c.fields["android"] = 2;
    c.fields["notable"] = 3;
    c.fields["inform"] = 4;
    c.fields["island"] = 5;
    c.fields["nullable"] = 6;
    c.fields["trueness"] = 7;
    c.fields["andy"] = 8;
    c.fields["or_else"] = 9;
    CHECK(compile_ok("order + android + notable + inform + island", scope).evaluate(c) ==
          Value(15));
    CHECK(compile_ok("nullable + trueness + andy + or_else", scope).evaluate(c) == Value(30));
    CHECK(compile_ok("order or android", scope).evaluate(c) == Value(true));
    CHECK(compile_ok("andy and notable", scope).evaluate(c) == Value(true));
    // After a dot a keyword is just a field name.
    c.fields["form.in"] = "x";
    c.fields["form.not"] = "y";
    CHECK(compile_ok("form.in + form.not", scope).evaluate(c) == Value("xy"));
    CHECK(error_of("order AND android", scope).message ==
          "unexpected 'AND' (keywords are lower case: 'and')");
    CHECK(error_of("TRUE").message.find("unknown name 'TRUE'") == 0);
  }
}

TEST_CASE("expr: precedence") {
  SUBCASE("arithmetic binds tighter than comparison, left to right") {
    CHECK(eval("1 + 2 * 3") == Value(7));
    CHECK(eval("(1 + 2) * 3") == Value(9));
    CHECK(eval("2 * 3 + 4 * 5") == Value(26));
    CHECK(eval("10 - 4 - 3") == Value(3));
    CHECK(eval("10 - (4 - 3)") == Value(9));
    CHECK(eval("64 / 4 / 2") == Value(8));
    CHECK(eval("2 + 3 * 4 - 5 / 5") == Value(13));
    CHECK(eval("-2 * -3 + 1") == Value(7));
    CHECK(eval("1 + 2 < 4 - 1") == Value(false));
    CHECK(eval("1 + 2 == 3") == Value(true));
  }
  SUBCASE("not sits between and and the comparisons") {
    CHECK(eval("not 1 == 2") == Value(true));        // not (1 == 2)
    CHECK(eval("not true or true") == Value(true));  // (not true) or true
    CHECK(eval("not (true or true)") == Value(false));
    CHECK(eval("not 0 and 1") == Value(true));  // (not 0) and 1
    CHECK(eval(R"(not form.industry in ["steel"])") == Value(true));
  }
  SUBCASE("and binds tighter than or") {
    CHECK(eval("true or false and false") == Value(true));
    CHECK(eval("(true or false) and false") == Value(false));
    CHECK(eval("false and true or true") == Value(true));
    CHECK(eval("1 < 2 and 2 < 3 or false") == Value(true));
  }
  SUBCASE("comparisons do not chain") {
    const ExprError e = error_of("1 < 2 < 3");
    CHECK(e.offset == 6);
    CHECK(e.message == "comparisons cannot be chained; join them with 'and' (a < b and b < c)");
    CHECK(error_of("1 == 1 == true").offset == 7);
    CHECK(error_of("1 < 2 + 3 in [1]").offset == 10);
    CHECK(error_of("not 1 < 2 < 3").offset == 10);
    CHECK(eval("(1 < 2) == true") == Value(true));
    CHECK(eval("1 < 2 and 2 < 3") == Value(true));
  }
  SUBCASE("not is only allowed where a condition starts") {
    CHECK(error_of("1 == not 2").offset == 5);
    CHECK(error_of("- not 1").offset == 2);
    CHECK(eval("1 == (not 2)") == Value(false));
  }
}

TEST_CASE("expr: short-circuit") {
  MapContext c = sample_application();
  c.forbidden = {"form.boom", "boom_material"};
  SUBCASE("and stops at the first falsy operand") {
    CHECK_FALSE(compile_ok("false and form.boom").test(c));
    CHECK_FALSE(compile_ok("form.zero and form.boom == 1").test(c));
    CHECK_FALSE(compile_ok("form.missing && has(boom_material)").test(c));
  }
  SUBCASE("or stops at the first truthy operand") {
    CHECK(compile_ok("true or form.boom").test(c));
    CHECK(compile_ok("has(id_card) or has(boom_material)").test(c));
    CHECK(compile_ok("form.name || form.boom").test(c));
  }
  SUBCASE("a run-time type error on the skipped side does not fire") {
    CHECK_FALSE(compile_ok("form.zero != 0 and form.name < 3").test(c));
    CHECK(compile_ok("form.zero == 0 or form.name < 3").test(c));
  }
  SUBCASE("the operands that are reached are read once") {
    c.reads = 0;
    CHECK(compile_ok("form.zero or form.name or form.boom").test(c));
    CHECK(c.reads == 2);
  }
}

TEST_CASE("expr: functions") {
  SUBCASE("has") {
    CHECK(eval("has(business_licence)") == Value(true));
    CHECK(eval(R"(has("id_card"))") == Value(true));
    CHECK(eval("has(eia_report)") == Value(false));
    CHECK(error_of("has(form.x)").message ==
          R"(has() takes a material id, e.g. has(business_licence) or has("business_licence"))");
    CHECK(error_of("has(1)").offset == 4);
    CHECK(error_of(R"(has(""))").offset == 4);
  }
  SUBCASE("len counts code points and list items") {
    CHECK(eval(R"(len("abc"))") == Value(3));
    CHECK(eval(R"(len("浦东"))") == Value(2));
    CHECK(eval(R"(len("héllo"))") == Value(5));
    CHECK(eval(R"(len(""))") == Value(0));
    CHECK(eval("len(form.tags)") == Value(2));
    CHECK(eval("len([])") == Value(0));
  }
  SUBCASE("lower, upper") {
    CHECK(eval(R"(lower("ChEm 1"))") == Value("chem 1"));
    CHECK(eval(R"(upper("chem-é"))") == Value("CHEM-é"));
  }
  SUBCASE("contains") {
    CHECK(eval(R"(contains(form.industry, "chem"))") == Value(true));
    CHECK(eval(R"(contains("abc", "d"))") == Value(false));
    CHECK(eval(R"(contains(form.tags, "export"))") == Value(true));
    CHECK(eval("contains([1, 2], 3)") == Value(false));
    CHECK(eval(R"(contains(form.missing, "x"))") == Value(false));
  }
  SUBCASE("starts_with, ends_with") {
    CHECK(eval(R"(starts_with("91310000", "9131"))") == Value(true));
    CHECK(eval(R"(starts_with(form.industry, "steel"))") == Value(false));
    CHECK(eval(R"(ends_with("report.pdf", ".pdf"))") == Value(true));
    CHECK(eval(R"(ends_with("report.pdf", ".doc"))") == Value(false));
  }
  SUBCASE("min, max") {
    CHECK(eval("min(3, 1, 2)") == Value(1));
    CHECK(eval("max(3, 1, 2)") == Value(3));
    CHECK(eval("max(7)") == Value(7));
    CHECK(eval("min([4, -1, 9])") == Value(-1));
    CHECK(eval("max([])").is_null());
    CHECK(eval(R"(max("2024-01-02", "2023-12-31"))") == Value("2024-01-02"));
    CHECK(eval("min(form.investment, 1e6)") == Value(1000000));
  }
  SUBCASE("abs") {
    CHECK(eval("abs(-4.5)") == Value(4.5));
    CHECK(eval("abs(3)") == Value(3));
  }
  SUBCASE("exists") {
    CHECK(eval("exists(form.industry)") == Value(true));
    CHECK(eval("exists(form.missing)") == Value(false));
    CHECK(eval("exists(form.zero)") == Value(true));
    CHECK(eval("exists(null)") == Value(false));
  }
  SUBCASE("number, string") {
    CHECK(eval(R"(number("42"))") == Value(42));
    CHECK(eval(R"(number(" -1.5e3 "))") == Value(-1500));
    CHECK(eval(R"(number("+7"))") == Value(7));
    CHECK(eval("number(5)") == Value(5));
    CHECK(eval("string(12)") == Value("12"));
    CHECK(eval("string(12.5)") == Value("12.5"));
    CHECK(eval("string(true)") == Value("true"));
    CHECK(eval(R"(string("x"))") == Value("x"));
    CHECK(eval(R"(string([1, "a"]))") == Value(R"([1, "a"])"));
    CHECK(eval("string(applicant.age) + \" years\"") == Value("17 years"));
  }
  SUBCASE("unknown function, with a hint") {
    const ExprError e = error_of("starts_wth(form.industry, \"c\")");
    CHECK(e.offset == 0);
    CHECK(
        e.message ==
        "unknown function 'starts_wth' (known: abs, contains, ends_with, exists, has, len, lower, "
        "max, min, number, starts_with, string, upper); did you mean 'starts_with'?");
    CHECK(error_of("1 + uper(\"x\")").message.find("did you mean 'upper'?") != std::string::npos);
    CHECK(error_of("1 + frobnicate(2)").message.find("did you mean") == std::string::npos);
  }
  SUBCASE("wrong arity names the function and the expected arity") {
    CHECK(error_of("len(1, 2)").message == "len() takes 1 argument, not 2 (usage: len(x))");
    CHECK(error_of("len()").message == "len() takes 1 argument, not 0 (usage: len(x))");
    CHECK(error_of(R"(contains("a"))").message ==
          "contains() takes 2 arguments, not 1 (usage: contains(haystack, needle))");
    CHECK(error_of("min()").message ==
          "min() takes at least 1 argument, not 0 (usage: min(a, b, ...))");
    CHECK(error_of("1 + has(a, b)").offset == 4);
  }
}

TEST_CASE("expr: null semantics") {
  SUBCASE("arithmetic with null gives null") {
    CHECK(eval("form.missing + 1").is_null());
    CHECK(eval("1 - null").is_null());
    CHECK(eval("null * 2").is_null());
    CHECK(eval("form.missing / 2").is_null());
    CHECK(eval("-form.missing").is_null());
    CHECK(eval(R"(form.missing + "x")").is_null());
  }
  SUBCASE("ordering with null is false") {
    CHECK(eval("form.missing > 100") == Value(false));
    CHECK(eval("form.missing <= 100") == Value(false));
    CHECK(eval("null < null") == Value(false));
    CHECK(eval(R"(form.missing >= "a")") == Value(false));
  }
  SUBCASE("value functions pass null through, predicates are false") {
    CHECK(eval("len(form.missing)").is_null());
    CHECK(eval("lower(form.missing)").is_null());
    CHECK(eval("abs(null)").is_null());
    CHECK(eval("number(null)").is_null());
    CHECK(eval("string(null)").is_null());
    CHECK(eval("max(1, null)").is_null());
    CHECK(eval(R"(starts_with(form.missing, "a"))") == Value(false));
    CHECK(eval(R"(contains("abc", null))") == Value(false));
  }
  SUBCASE("null is falsy in conditions") {
    CHECK(eval("not form.missing") == Value(true));
    CHECK_FALSE(compile_ok("form.missing").test(sample_application()));
  }
}

TEST_CASE("expr: names") {
  SUBCASE("dotted paths under the scope's roots, and bare names") {
    CHECK(eval("form.site.district") == Value("Pudong"));
    CHECK(eval("applicant.kind") == Value("legal_person"));
    CHECK(eval("case.anything").is_null());
    CHECK(eval("all_approved") == Value(true));
    CHECK(eval("approvals >= 2") == Value(true));
  }
  SUBCASE("unknown names list what is known and suggest the closest") {
    const ExprError e = error_of("fom.investment > 1");
    CHECK(e.offset == 0);
    CHECK(e.message ==
          "unknown name 'fom.investment' (known: form.*, applicant.*, case.*, outcome, approved, "
          "rejected, all_approved, any_rejected, approvals, rejections); did you mean "
          "'form.investment'?");
    CHECK(error_of("all_aproved").message.find("; did you mean 'all_approved'?") !=
          std::string::npos);
    CHECK(error_of("not aplicant.age").message.find("did you mean 'applicant.age'?") !=
          std::string::npos);
    const ExprError far = error_of("1 + budget");
    CHECK(far.offset == 4);
    CHECK(far.message.find("unknown name 'budget' (known: form.*") == 0);
    CHECK(far.message.find("did you mean") == std::string::npos);
  }
  SUBCASE("a root alone is not a value") {
    const ExprError e = error_of("form == null");
    CHECK(e.offset == 0);
    CHECK(e.message == "'form' alone is not a value; name one of its fields, e.g. 'form.<field>'");
  }
  SUBCASE("bare names have no fields") {
    CHECK(error_of("outcome.x").message.find("unknown name 'outcome.x'") == 0);
  }
  SUBCASE("an empty scope") {
    const ExprError e = error_of("x", ExprScope{});
    CHECK(e.message == "unknown name 'x' (no names are available here)");
  }
  SUBCASE("every name, function and type problem is reported") {
    const auto errors = errors_of(R"(frm.a > 1 and nope(1) and len(1, 2) or "a" * 2 or zzz)");
    REQUIRE(errors.size() == 5);
    CHECK(errors[0].offset == 0);
    CHECK(errors[1].offset == 14);
    CHECK(errors[2].offset == 26);
    CHECK(errors[3].offset == 43);
    CHECK(errors[4].offset == 50);
  }
  SUBCASE("errors are appended") {
    std::vector<ExprError> errors{ExprError{99, "earlier"}};
    CHECK_FALSE(Expr::compile("x", guard_scope(), errors).valid());
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].message == "earlier");
  }
}

TEST_CASE("expr: syntax errors and their offsets") {
  const auto check = [](std::string_view text, std::size_t offset, std::string_view message) {
    const auto errors = errors_of(text);
    INFO("expression: " << text);
    REQUIRE(errors.size() == 1);  // syntax errors: the first only
    CHECK(errors[0].offset == offset);
    CHECK(errors[0].message == message);
  };
  check("", 0, "empty expression");
  check("   \n ", 0, "empty expression");
  check("1 +", 3, "expected an operand");
  check("1 + * 2", 4, "expected an operand");
  check("(1 + 2", 6, "expected ')'");
  check("((1)", 4, "expected ')'");
  check("len(1 2)", 6, "expected ',' or ')'");
  check("[1 2]", 3, "expected ',' or ']'");
  check("[1, ]", 4, "expected an operand");
  check("f(,)", 2, "expected an operand");
  check("form.a > 3 xyz", 11, "unexpected 'xyz'");
  check(")", 0, "expected an operand");
  check("1 )", 2, "unexpected ')'");
  check(R"(form.kind == "abc)", 13, "unterminated string");
  check("'abc", 0, "unterminated string");
  check(R"("a\qb")", 2, R"(unknown escape '\q' (use \" \' \\ \n or \t))");
  check("form.a = 1", 7, "unexpected '=' (use '==' to compare)");
  check("form. a", 5, "expected a field name after '.'");
  check("a & b", 2, "unexpected '&'");
  check("1e400", 0, "number out of range");
  check("x not y", 2, "unexpected 'not'");
  check("not", 3, "expected an operand");
  check("1 and or 2", 6, "expected an operand");
  check("form.a in", 9, "expected an operand");
  // Slips from a Chinese input method.
  check("len（form.tags）", 3,
        "unexpected '（' (a full-width character; type it in half-width ASCII)");
  check("form.kind == “x”", 13, "expected an operand (a curly quote; use \" or ')");
  // A syntax error wins over name errors before it.
  check("nope > 1 +", 10, "expected an operand");
}

TEST_CASE("expr: type errors") {
  SUBCASE("at compile time, when literals fix the types") {
    const ExprError e = error_of(R"("a" * 2)");
    CHECK(e.offset == 4);
    CHECK(e.message == R"(cannot multiply string "a" by number 2)");
    CHECK(error_of(R"(1 < "x")").message == R"(cannot compare number 1 with string "x")");
    CHECK(error_of("true + 1").message == "cannot add bool true and number 1");
    CHECK(error_of(R"(-"a")").message == R"(cannot negate string "a")");
    CHECK(error_of(R"(3 in "abc")").message == R"(cannot look for number 3 in string "abc")");
    CHECK(error_of("1 in 2").message == "cannot look for number 1 in number 2");
    CHECK(error_of("applicant.age in 18").message == "cannot look for any value in number 18");
    CHECK(error_of("len(5)").message == "len() needs a string or a list, not number 5");
    CHECK(error_of(R"(number("abc"))").message ==
          R"(number() cannot convert string "abc" to a number)");
    CHECK(error_of("min(1, \"a\")").message == R"(min() cannot compare number 1 with string "a")");
    CHECK(error_of("1 / 0").message == "division by zero");
    CHECK(error_of("form.investment / 0").offset == 16);
  }
  SUBCASE("at compile time, when a function or operator fixes a type") {
    CHECK(error_of("lower(form.name) * 2").message == "cannot multiply string by number 2");
    CHECK(error_of("exists(form.a) + 1").message == "cannot add bool and number 1");
    CHECK(error_of("len(form.tags) < \"x\"").message == R"(cannot compare number with string "x")");
    CHECK(error_of("form.a - \"x\"").message == R"(cannot subtract string "x" from any value)");
    CHECK(error_of("upper(len(form.a))").message == "upper() needs a string, not number");
  }
  SUBCASE("at run time, naming the expression") {
    const MapContext c = sample_application();
    CHECK(runtime_error_of("form.name < 3", c) ==
          R"(cannot compare string "abc" with number 3 in 'form.name < 3')");
    CHECK(runtime_error_of("form.investment / form.zero", c) ==
          "cannot divide number 60000000 by zero in 'form.investment / form.zero'");
    CHECK(runtime_error_of("form.name - 1", c) ==
          R"(cannot subtract number 1 from string "abc" in 'form.name - 1')");
    CHECK(runtime_error_of("form.tags + 1", c) ==
          R"(cannot add list ["export", "hazardous"] and number 1 in 'form.tags + 1')");
    CHECK(runtime_error_of("applicant.age in form.industry", c) ==
          R"(cannot look for number 17 in string "chemical" in 'applicant.age in form.industry')");
    CHECK(runtime_error_of("all_approved > 1", c) ==
          "cannot compare bool true with number 1 in 'all_approved > 1'");
    CHECK(runtime_error_of("number(form.name) > 1", c) ==
          R"(number() cannot convert string "abc" to a number in 'number(form.name) > 1')");
    CHECK(runtime_error_of("len(form.investment)", c) ==
          "len() needs a string or a list, not number 60000000 in 'len(form.investment)'");
    CHECK(
        runtime_error_of("max(form.tags, 1)", c) ==
        R"(max() needs numbers or strings, not list ["export", "hazardous"] in 'max(form.tags, 1)')");
    CHECK(runtime_error_of("-form.name", c) == R"(cannot negate string "abc" in '-form.name')");
  }
  SUBCASE("long values are clipped in messages") {
    MapContext c;
    c.fields["form.essay"] = std::string(500, 'x');
    const std::string message = runtime_error_of("form.essay < 1", c);
    CHECK(message.size() < 120);
    CHECK(message.find("...") != std::string::npos);
  }
}

TEST_CASE("expr: limits on hostile input") {
  const auto repeat = [](std::string_view piece, std::size_t n) {
    std::string out;
    out.reserve(piece.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += piece;
    return out;
  };
  // head followed by n times piece (built by appending: GCC 12 -O3 warns
  // falsely on `"literal" + std::string&&`).
  const auto chain = [&](std::string head, std::string_view piece, std::size_t n) {
    return head.append(repeat(piece, n));
  };
  const std::string too_deep = "expression nested too deeply (limit 256)";
  SUBCASE("256 levels are fine, 257 are not") {
    CHECK(eval(repeat("(", 256) + chain("1", ")", 256)) == Value(1));
    const ExprError e = error_of(repeat("(", 257) + chain("1", ")", 257));
    CHECK(e.offset == 256);
    CHECK(e.message == too_deep);
    CHECK(eval(repeat("not ", 256) + "true") == Value(true));
    CHECK(error_of(repeat("not ", 257) + "true").offset == 256 * 4);
    CHECK(eval(repeat("-", 256) + "1") == Value(1));
    CHECK(error_of(repeat("-", 257) + "1").offset == 256);
    CHECK(eval(repeat("[", 256) + repeat("]", 256)) == eval(repeat("[", 256) + repeat("]", 256)));
    CHECK(error_of(repeat("[", 257) + repeat("]", 257)).message == too_deep);
    CHECK(eval(repeat("abs(", 256) + chain("1", ")", 256)) == Value(1));
    CHECK(error_of(repeat("abs(", 256) + chain("-1", ")", 256)).message == too_deep);
  }
  SUBCASE("every kind of nesting counts together") {
    CHECK(error_of(repeat("not (", 129) + chain("1", ")", 129)).message == too_deep);
    CHECK(eval(repeat("not (", 128) + chain("1", ")", 128)) == Value(true));
    CHECK(error_of(repeat("[-(", 86) + chain("1", ")]", 86)).message == too_deep);
  }
  SUBCASE("100000 levels do not overflow the stack") {
    CHECK(error_of(repeat("(", 65536)).message == too_deep);
    CHECK(error_of(repeat("(", 100000) + chain("1", ")", 100000)).message ==
          "expression too long (200001 bytes; limit 65536)");
    CHECK(error_of(repeat("(", 60000) + chain("1", ")", 5000)).message == too_deep);
    CHECK(error_of(repeat("not ", 16000) + "x").message == too_deep);
    CHECK(error_of(repeat("!", 60000) + "x").message == too_deep);
    CHECK(error_of(repeat("-", 60000) + "1").message == too_deep);
    CHECK(error_of(repeat("[", 60000)).message == too_deep);
    CHECK(error_of(repeat("len(", 16000)).message == too_deep);
    // 100000 of anything is over the size limit, checked before parsing.
    CHECK(error_of(repeat("not ", 100000) + "x").message.find("expression too long") == 0);
    CHECK(error_of(repeat("-", 100000) + "1").message.find("expression too long") == 0);
  }
  SUBCASE("long flat chains are not nesting") {
    CHECK(eval(chain("1", " + 1", 16000)) == Value(16001));
    CHECK(eval(chain("true", " and true", 7000)) == Value(true));
    CHECK(eval(chain("0", " or 0", 10000) + " or 1") == Value(true));
    CHECK(eval(chain("[", "1, ", 20000) + "1]").as_list().size() == 20001);
    const MapContext c = sample_application();
    CHECK(compile_ok(chain("form.zero", " + form.zero", 5000)).evaluate(c) == Value(0));
    CHECK(compile_ok(chain("[", "form.zero, ", 5000) + "1]").evaluate(c).as_list().size() == 5001);
  }
  SUBCASE("text over 64 KiB") {
    const std::string text = chain("1", " ", 65536);
    const ExprError e = error_of(text);
    CHECK(e.offset == 65536);
    CHECK(e.message == "expression too long (65537 bytes; limit 65536)");
    CHECK(eval(chain("1", " ", 65535)) == Value(1));
  }
}

TEST_CASE("expr: materials() and fields()") {
  const Expr e = compile_ok(
      R"(has(eia_report) or form.investment >= 5e7 and has("safety_plan") and )"
      R"(form.industry in ["chemical", form.other] or has(eia_report) or form.investment > 0 )"
      R"(or all_approved or outcome == "approved" or not all_approved)");
  CHECK(e.materials() == std::vector<std::string>{"eia_report", "safety_plan"});
  CHECK(e.fields() == std::vector<std::string>{"form.investment", "form.industry", "form.other",
                                               "all_approved", "outcome"});
  const Expr constant = compile_ok("1 + 1 == 2");
  CHECK(constant.materials().empty());
  CHECK(constant.fields().empty());
  CHECK(constant.test(MapContext{}));
}

TEST_CASE("expr: Expr objects") {
  SUBCASE("text() keeps the source") { CHECK(compile_ok(" form.a > 1 ").text() == " form.a > 1 "); }
  SUBCASE("copies share the program and evaluate alike") {
    MapContext c = sample_application();
    Expr original =
        compile_ok(R"(form.investment >= 50000000 and form.industry in ["chemical", "steel"])");
    const Expr copy = original;
    Expr assigned;
    assigned = copy;
    original = Expr();
    CHECK_FALSE(original.valid());
    CHECK(copy.valid());
    CHECK(copy.test(c));
    CHECK(assigned.test(c));
    CHECK(assigned.text() == copy.text());
    CHECK(&assigned.fields() == &copy.fields());
    c.fields["form.industry"] = "textile";
    CHECK_FALSE(copy.test(c));
  }
  SUBCASE("an invalid Expr") {
    const Expr invalid;
    CHECK_FALSE(invalid.valid());
    CHECK(invalid.text().empty());
    CHECK(invalid.materials().empty());
    CHECK(invalid.fields().empty());
    try {
      (void)invalid.evaluate(MapContext{});
      FAIL("evaluated an invalid Expr");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid_state);
    }
    CHECK_THROWS_AS((void)invalid.test(MapContext{}), Error);
  }
  SUBCASE("evaluate returns computed and constant values alike") {
    const MapContext c = sample_application();
    CHECK(compile_ok(R"("abc")").evaluate(c) == Value("abc"));
    CHECK(compile_ok("form.tags").evaluate(c) == list({"export", "hazardous"}));
    CHECK(compile_ok("[form.name]").evaluate(c) == list({"abc"}));
    CHECK(compile_ok("form.tags").test(c));
  }
  SUBCASE("context exceptions pass through") {
    MapContext c;
    c.forbidden = {"form.boom"};
    CHECK_THROWS_AS(compile_ok("form.boom").evaluate(c), std::logic_error);
  }
}

TEST_CASE("expr: realistic guards") {
  MapContext c = sample_application();
  SUBCASE("environmental impact report for large chemical projects") {
    const Expr e = compile_ok(
        R"(form.investment >= 50000000 and form.industry in ["chemical", "steel", "cement"])",
        ExprScope{{"form", "applicant"}, {}});
    CHECK(e.test(c));
    c.fields["form.investment"] = 49999999;
    CHECK_FALSE(e.test(c));
  }
  SUBCASE("guardian consent for minors") {
    const Expr e = compile_ok(R"(applicant.kind == "natural_person" and applicant.age < 18)");
    c.fields["applicant.kind"] = "natural_person";
    CHECK(e.test(c));
    c.fields["applicant.age"] = 18;
    CHECK_FALSE(e.test(c));
    c.fields.erase("applicant.age");
    CHECK_FALSE(e.test(c));
  }
  SUBCASE("countersign quorum") {
    const Expr e = compile_ok("approvals / (approvals + rejections) >= 60%");
    c.fields["rejections"] = 2;
    CHECK(e.test(c));
    c.fields["rejections"] = 3;
    CHECK_FALSE(e.test(c));
  }
}
