#pragma once

// Condition expressions: the guards on edges and the `required_if` of
// materials. Parsed once (Boost.Spirit X3, in src/expr/) into a compiled
// program; evaluated many times against an application.
//
//   form.investment >= 50000000 and form.industry in ["chemical", "steel"]
//   has(business_licence) or applicant.kind == "natural_person"
//   not all_approved
//
// The language is documented in docs/expressions.md.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace onestop {

// A dynamically typed value: null, bool, number (double), string or list.
class Value {
 public:
  enum class Type { null, boolean, number, string, list };
  using List = std::vector<Value>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(double d) : v_(d) {}
  Value(int i) : v_(static_cast<double>(i)) {}
  Value(long long i) : v_(static_cast<double>(i)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(List l) : v_(std::move(l)) {}

  Type type() const noexcept { return static_cast<Type>(v_.index()); }
  bool is_null() const noexcept { return v_.index() == 0; }
  // REQUIRES: the value has that type (else throws onestop::Error invalid_input).
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const List& as_list() const;

  // false for null, false, 0, "" and []; true otherwise.
  bool truthy() const noexcept;
  // A readable rendering for messages: 12, "text", [1, 2], null.
  std::string to_string() const;

  friend bool operator==(const Value& a, const Value& b) noexcept { return a.v_ == b.v_; }

 private:
  std::variant<std::monostate, bool, double, std::string, List> v_;
};

// The name of a value type: "null", "bool", "number", "string", "list".
std::string_view to_string(Value::Type type) noexcept;

// Supplies values for the names an expression reads.
class ExprContext {
 public:
  virtual ~ExprContext() = default;
  // The value of a dotted path ("form.investment", "applicant.kind") or of a
  // bare name allowed by the scope ("all_approved"); null when absent.
  virtual Value field(std::string_view path) const = 0;
  // Whether the application holds the material with this id.
  virtual bool has_material(std::string_view material_id) const = 0;
};

// What names an expression may use; anything else is a compile error.
struct ExprScope {
  // Roots of dotted paths, e.g. {"form", "applicant", "case"}.
  std::vector<std::string> roots;
  // Bare names, e.g. {"outcome", "all_approved"}.
  std::vector<std::string> names;
};

// One problem in an expression; offset is a byte offset into its text.
struct ExprError {
  std::size_t offset = 0;
  std::string message;
};

namespace detail {
struct Program;
}

// A compiled condition. Cheap to copy (shares the immutable program).
class Expr {
 public:
  Expr() = default;

  // Parses and checks `text`. On failure returns an invalid Expr and appends
  // every problem found to `errors` (syntax errors stop at the first).
  static Expr compile(std::string_view text, const ExprScope& scope,
                      std::vector<ExprError>& errors);

  bool valid() const noexcept { return program_ != nullptr; }
  const std::string& text() const noexcept;

  // Evaluates the expression. Throws onestop::Error(invalid_input) on a type
  // error met at run time (e.g. "abc" < 3), naming the expression.
  Value evaluate(const ExprContext& context) const;
  // evaluate(context).truthy()
  bool test(const ExprContext& context) const;

  // Material ids named in has(...), for reference checks at load time.
  const std::vector<std::string>& materials() const noexcept;
  // Distinct dotted paths and bare names the expression reads.
  const std::vector<std::string>& fields() const noexcept;

 private:
  std::shared_ptr<const detail::Program> program_;
};

}  // namespace onestop
