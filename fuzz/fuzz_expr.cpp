// libFuzzer target for the condition-expression language: compiles arbitrary
// text and evaluates whatever compiles. Guards come from YAML that tenants
// write, so neither step may crash, hang or overflow the stack; errors must
// come back as ExprError (compile) or onestop::Error (run time).
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined \
//     -Iinclude fuzz/fuzz_expr.cpp src/expr/*.cpp src/common/error.cpp -lfmt

#include <cstddef>
#include <cstdint>
#include <onestop/error.hpp>
#include <onestop/expr.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace {

// A fixed application with one value of every type, so that evaluation
// reaches every operation's type combinations.
class FixedApplication : public onestop::ExprContext {
 public:
  onestop::Value field(std::string_view path) const override {
    using onestop::Value;
    if (path == "form.investment") return 60000000;
    if (path == "form.ratio") return 0.5;
    if (path == "form.zero") return 0;
    if (path == "form.industry") return "chemical";
    if (path == "form.empty") return "";
    if (path == "form.tags") return Value::List{"export", 3, Value(), Value::List{true}};
    if (path == "form.flag" || path == "all_approved") return true;
    if (path == "applicant.kind") return "legal_person";
    if (path == "applicant.age") return 17;
    if (path == "case.region") return "310115";
    if (path == "outcome") return "approved";
    return {};
  }
  bool has_material(std::string_view id) const override { return id.size() % 2 == 0; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const onestop::ExprScope scope{{"form", "applicant", "case"}, {"outcome", "all_approved"}};
  static const FixedApplication application;

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<onestop::ExprError> errors;
  const onestop::Expr expr = onestop::Expr::compile(text, scope, errors);

  // The contract of compile(): invalid exactly when it reported something,
  // and every offset points into the text (or just past it).
  if (expr.valid() != errors.empty()) __builtin_trap();
  for (const auto& error : errors) {
    if (error.offset > size || error.message.empty()) __builtin_trap();
  }
  if (!expr.valid()) return 0;
  if (expr.text() != text) __builtin_trap();

  const onestop::Expr copy = expr;  // shares the program
  try {
    const onestop::Value value = copy.evaluate(application);
    if (value.truthy() != expr.test(application)) __builtin_trap();
    (void)value.to_string();
  } catch (const onestop::Error& error) {
    if (error.code() != onestop::ErrorCode::invalid_input) __builtin_trap();
  }
  return 0;
}
