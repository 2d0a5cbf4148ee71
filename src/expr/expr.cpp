// The condition-expression language: parser (Boost.Spirit X3), compiler to
// a small stack bytecode, and evaluator. All Spirit code lives in this one
// translation unit because it is slow to compile.
//
// Pipeline: text -> X3 grammar whose semantic actions fill a flat node arena
// -> Compiler (names, arities, static type checks, constant folding) ->
// Program (bytecode + constant pool) -> run() per evaluation.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/fusion/include/at_c.hpp>
#include <boost/spirit/home/x3.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <onestop/error.hpp>
#include <onestop/expr.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace onestop {

namespace {

// Guards come from YAML written by people; anything this large or this
// deep is hostile or generated, and the recursive-descent parser must not
// be driven into a stack overflow by it.
constexpr std::size_t kMaxTextBytes = 64 * 1024;
constexpr int kMaxNesting = 256;

// ---------------------------------------------------------------------------
// Small text helpers

bool is_ident_head(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_tail(char c) { return is_ident_head(c) || (c >= '0' && c <= '9'); }

std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead >= 0xf0) return 4;
  if (lead >= 0xe0) return 3;
  if (lead >= 0xc0) return 2;
  return 1;
}

// Cuts `s` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string clip(std::string s, std::size_t limit) {
  if (s.size() <= limit) return s;
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
  s.resize(cut);
  s += "...";
  return s;
}

std::size_t count_code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

// Optimal-string-alignment distance, for "did you mean" hints.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// The closest candidate within a typo's reach, or empty.
std::string_view closest(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  std::size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    const std::size_t reach = std::max<std::size_t>(1, candidate.size() / 3);
    const std::size_t gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                           : candidate.size() - word.size();
    if (gap > reach) continue;
    const std::size_t d = edit_distance(word, candidate);
    if (d == 0 || d > reach || d >= word.size()) continue;
    if (best.empty() || d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Value types as sets, for the static checks

using TypeSet = std::uint8_t;

constexpr TypeSet type_bit(Value::Type type) {
  return static_cast<TypeSet>(1u << static_cast<unsigned>(type));
}
constexpr TypeSet kNullOnly = type_bit(Value::Type::null);
constexpr TypeSet kAnyType = 0x1f;
constexpr std::array kEveryType = {Value::Type::null, Value::Type::boolean, Value::Type::number,
                                   Value::Type::string, Value::Type::list};

// A stand-in of each type, run through an operation to learn whether that
// type combination is accepted and what it yields. Samples are chosen so
// that no value-dependent failure (division by zero, number("abc")) fires.
const Value& sample_of(Value::Type type) {
  static const std::array<Value, 5> samples = {Value(), Value(true), Value(1), Value("1"),
                                               Value(Value::List{Value(1)})};
  return samples[static_cast<std::size_t>(type)];
}

// ---------------------------------------------------------------------------
// Operations, shared by the evaluator, constant folding and static checks

enum class BinaryOp : std::uint8_t {
  add,
  subtract,
  multiply,
  divide,
  equal,
  not_equal,
  less,
  less_equal,
  greater,
  greater_equal,
  in,
  not_in,
};

// A type error met while applying an operation. `message` describes the
// operands by value (run time, folding); `pattern` and `operands` let a
// static check describe them by type instead.
struct OperationFault {
  std::string message;
  const char* pattern;
  std::array<int, 2> operands;
};

std::string describe(const Value& value) {
  if (value.is_null()) return "null";
  return fmt::format("{} {}", to_string(value.type()), clip(value.to_string(), 40));
}

[[noreturn]] void fail(const char* pattern, std::size_t i, const Value& a) {
  throw OperationFault{fmt::format(fmt::runtime(pattern), describe(a)),
                       pattern,
                       {static_cast<int>(std::min<std::size_t>(i, 2)), -1}};
}

[[noreturn]] void fail(const char* pattern, std::size_t i, const Value& a, std::size_t j,
                       const Value& b) {
  throw OperationFault{fmt::format(fmt::runtime(pattern), describe(a), describe(b)),
                       pattern,
                       {static_cast<int>(std::min<std::size_t>(i, 2)),
                        static_cast<int>(std::min<std::size_t>(j, 2))}};
}

bool is(const Value& v, Value::Type type) { return v.type() == type; }

// Ordering is false, not an error, when a side is missing: a guard such as
// `form.amount > 100` must simply not hold on an application without it.
bool ordered(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return false;
  int order = 0;
  if (is(a, Value::Type::number) && is(b, Value::Type::number)) {
    const double x = a.as_number();
    const double y = b.as_number();
    switch (op) {
      case BinaryOp::less:
        return x < y;
      case BinaryOp::less_equal:
        return x <= y;
      case BinaryOp::greater:
        return x > y;
      default:
        return x >= y;
    }
  }
  if (is(a, Value::Type::string) && is(b, Value::Type::string)) {
    order = a.as_string().compare(b.as_string());
  } else {
    fail("cannot compare {} with {}", 0, a, 1, b);
  }
  switch (op) {
    case BinaryOp::less:
      return order < 0;
    case BinaryOp::less_equal:
      return order <= 0;
    case BinaryOp::greater:
      return order > 0;
    default:
      return order >= 0;
  }
}

// Membership: by == in a list, substring in a string, never in null.
// nullopt when the haystack cannot be searched for such a needle.
std::optional<bool> find_in(const Value& haystack, const Value& needle) {
  switch (haystack.type()) {
    case Value::Type::null:
      return false;
    case Value::Type::list: {
      const auto& items = haystack.as_list();
      return std::find(items.begin(), items.end(), needle) != items.end();
    }
    case Value::Type::string:
      if (needle.is_null()) return false;
      if (!is(needle, Value::Type::string)) return std::nullopt;
      return haystack.as_string().find(needle.as_string()) != std::string::npos;
    default:
      return std::nullopt;
  }
}

Value arithmetic(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return {};
  if (is(a, Value::Type::number) && is(b, Value::Type::number)) {
    const double x = a.as_number();
    const double y = b.as_number();
    switch (op) {
      case BinaryOp::add:
        return x + y;
      case BinaryOp::subtract:
        return x - y;
      case BinaryOp::multiply:
        return x * y;
      default:
        if (y == 0) fail("cannot divide {} by zero", 0, a);
        return x / y;
    }
  }
  switch (op) {
    case BinaryOp::add:
      if (is(a, Value::Type::string) && is(b, Value::Type::string)) {
        return a.as_string() + b.as_string();
      }
      if (is(a, Value::Type::list) && is(b, Value::Type::list)) {
        Value::List joined = a.as_list();
        const auto& tail = b.as_list();
        joined.insert(joined.end(), tail.begin(), tail.end());
        return joined;
      }
      fail("cannot add {} and {}", 0, a, 1, b);
    case BinaryOp::subtract:
      fail("cannot subtract {1} from {0}", 0, a, 1, b);
    case BinaryOp::multiply:
      fail("cannot multiply {} by {}", 0, a, 1, b);
    default:
      fail("cannot divide {} by {}", 0, a, 1, b);
  }
}

Value apply_binary(BinaryOp op, const Value& a, const Value& b) {
  switch (op) {
    case BinaryOp::equal:
      return a == b;
    case BinaryOp::not_equal:
      return !(a == b);
    case BinaryOp::less:
    case BinaryOp::less_equal:
    case BinaryOp::greater:
    case BinaryOp::greater_equal:
      return ordered(op, a, b);
    case BinaryOp::in:
    case BinaryOp::not_in: {
      const std::optional<bool> found = find_in(b, a);
      if (!found) fail("cannot look for {} in {}", 0, a, 1, b);
      return op == BinaryOp::in ? *found : !*found;
    }
    default:
      return arithmetic(op, a, b);
  }
}

Value negate(const Value& a) {
  if (a.is_null()) return {};
  if (!is(a, Value::Type::number)) fail("cannot negate {}", 0, a);
  return -a.as_number();
}

// ---------------------------------------------------------------------------
// Built-in functions

enum class Builtin : std::uint8_t {
  abs,
  contains,
  ends_with,
  exists,
  has,
  len,
  lower,
  max,
  min,
  number,
  starts_with,
  string,
  upper,
};

constexpr std::uint8_t kVariadic = 255;

struct BuiltinInfo {
  std::string_view name;
  Builtin id;
  std::uint8_t min_args;
  std::uint8_t max_args;
  std::string_view usage;
};

constexpr std::array<BuiltinInfo, 13> kBuiltins{{
    {"abs", Builtin::abs, 1, 1, "abs(x)"},
    {"contains", Builtin::contains, 2, 2, "contains(haystack, needle)"},
    {"ends_with", Builtin::ends_with, 2, 2, "ends_with(text, suffix)"},
    {"exists", Builtin::exists, 1, 1, "exists(x)"},
    {"has", Builtin::has, 1, 1, "has(material_id)"},
    {"len", Builtin::len, 1, 1, "len(x)"},
    {"lower", Builtin::lower, 1, 1, "lower(text)"},
    {"max", Builtin::max, 1, kVariadic, "max(a, b, ...)"},
    {"min", Builtin::min, 1, kVariadic, "min(a, b, ...)"},
    {"number", Builtin::number, 1, 1, "number(x)"},
    {"starts_with", Builtin::starts_with, 2, 2, "starts_with(text, prefix)"},
    {"string", Builtin::string, 1, 1, "string(x)"},
    {"upper", Builtin::upper, 1, 1, "upper(text)"},
}};

const BuiltinInfo* find_builtin(std::string_view name) {
  for (const BuiltinInfo& info : kBuiltins) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

// Accepts what a designer would type into a form field: "12", " 3.5 ",
// "-1e6", "+7"; rejects "abc", "12abc", "inf", "nan".
std::optional<double> parse_number(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string ascii_case(const std::string& s, bool upper) {
  std::string out = s;
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

template <typename Get>
Value extreme_of(bool want_max, const Get& get, std::size_t count, bool from_list) {
  const Value* best = nullptr;
  std::size_t best_index = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Value& v = get(i);
    if (v.is_null()) return {};
    const std::size_t where = from_list ? 0 : i;
    if (!is(v, Value::Type::number) && !is(v, Value::Type::string)) {
      fail(want_max ? "max() needs numbers or strings, not {}"
                    : "min() needs numbers or strings, not {}",
           where, v);
    }
    if (best == nullptr) {
      best = &v;
      best_index = where;
      continue;
    }
    if (v.type() != best->type()) {
      fail(want_max ? "max() cannot compare {} with {}" : "min() cannot compare {} with {}",
           best_index, *best, where, v);
    }
    const bool better =
        is(v, Value::Type::number)
            ? (want_max ? v.as_number() > best->as_number() : v.as_number() < best->as_number())
            : (want_max ? v.as_string() > best->as_string() : v.as_string() < best->as_string());
    if (better) {
      best = &v;
      best_index = where;
    }
  }
  return best != nullptr ? *best : Value();
}

// `Args` is anything indexable yielding `const Value&`: evaluator slots at
// run time, constants when folding, samples in static checks.
template <typename Args>
Value call_builtin(Builtin fn, const Args& args, std::size_t argc) {
  switch (fn) {
    case Builtin::abs: {
      const Value& x = args[0];
      if (x.is_null()) return {};
      if (!is(x, Value::Type::number)) fail("abs() needs a number, not {}", 0, x);
      return std::fabs(x.as_number());
    }
    case Builtin::contains: {
      const std::optional<bool> found = find_in(args[0], args[1]);
      if (found) return *found;
      if (is(args[0], Value::Type::string)) {
        fail("contains() cannot look for {1} in {0}", 0, args[0], 1, args[1]);
      }
      fail("contains() needs a list or a string to search, not {}", 0, args[0]);
    }
    case Builtin::starts_with:
    case Builtin::ends_with: {
      const bool prefix = fn == Builtin::starts_with;
      const Value& text = args[0];
      const Value& part = args[1];
      if (text.is_null() || part.is_null()) return false;
      if (!is(text, Value::Type::string)) {
        fail(prefix ? "starts_with() needs a string, not {}" : "ends_with() needs a string, not {}",
             0, text);
      }
      if (!is(part, Value::Type::string)) {
        fail(prefix ? "starts_with() needs a string prefix, not {}"
                    : "ends_with() needs a string suffix, not {}",
             1, part);
      }
      const std::string_view t = text.as_string();
      return prefix ? t.starts_with(part.as_string()) : t.ends_with(part.as_string());
    }
    case Builtin::exists:
      return !args[0].is_null();
    case Builtin::has:
      return false;  // compiled to its own instruction, never called
    case Builtin::len: {
      const Value& x = args[0];
      if (x.is_null()) return {};
      if (is(x, Value::Type::string)) return static_cast<double>(count_code_points(x.as_string()));
      if (is(x, Value::Type::list)) return static_cast<double>(x.as_list().size());
      fail("len() needs a string or a list, not {}", 0, x);
    }
    case Builtin::lower:
    case Builtin::upper: {
      const bool upper = fn == Builtin::upper;
      const Value& x = args[0];
      if (x.is_null()) return {};
      if (!is(x, Value::Type::string)) {
        fail(upper ? "upper() needs a string, not {}" : "lower() needs a string, not {}", 0, x);
      }
      return ascii_case(x.as_string(), upper);
    }
    case Builtin::min:
    case Builtin::max: {
      const bool want_max = fn == Builtin::max;
      if (argc == 1 && is(args[0], Value::Type::list)) {
        const auto& items = args[0].as_list();
        return extreme_of(
            want_max, [&](std::size_t i) -> const Value& { return items[i]; }, items.size(), true);
      }
      return extreme_of(
          want_max, [&](std::size_t i) -> const Value& { return args[i]; }, argc, false);
    }
    case Builtin::number: {
      const Value& x = args[0];
      if (x.is_null() || is(x, Value::Type::number)) return x;
      if (!is(x, Value::Type::string)) fail("number() needs a string or a number, not {}", 0, x);
      const std::optional<double> parsed = parse_number(x.as_string());
      if (!parsed) fail("number() cannot convert {} to a number", 0, x);
      return *parsed;
    }
    case Builtin::string: {
      const Value& x = args[0];
      switch (x.type()) {
        case Value::Type::null:
          return {};
        case Value::Type::string:
          return x;
        case Value::Type::number:
          return fmt::format("{}", x.as_number());
        case Value::Type::boolean:
          return x.as_bool() ? "true" : "false";
        case Value::Type::list:
          return x.to_string();
      }
      return {};
    }
  }
  return {};
}

struct PointerArgs {
  const Value* const* pointers;
  const Value& operator[](std::size_t i) const { return *pointers[i]; }
};

// ---------------------------------------------------------------------------
// Bytecode

enum class Op : std::uint8_t {
  push_constant,  // arg: constant index
  load_field,     // arg: index into fields
  has_material,   // arg: index into materials
  and_jump,       // top falsy: replace by false, jump to arg; else pop
  or_jump,        // top truthy: replace by true, jump to arg; else pop
  to_bool,
  logical_not,
  negate,
  binary,     // argc: BinaryOp
  make_list,  // arg: element count
  call,       // argc: Builtin, arg: argument count
};

struct Instruction {
  Op op;
  std::uint8_t sub;  // BinaryOp or Builtin
  std::uint32_t arg;
};

}  // namespace

namespace detail {

struct Program {
  std::string text;
  std::vector<Instruction> code;
  std::vector<Value> constants;
  std::vector<std::string> fields;
  std::vector<std::string> materials;
  std::uint32_t stack_size = 0;
};

}  // namespace detail

namespace {

// ---------------------------------------------------------------------------
// Syntax tree: a flat arena filled by the grammar's semantic actions.
// Operator chains are stored as one node with n operands so that a long
// `a + b + c + ...` costs no recursion later; only real nesting (bounded by
// kMaxNesting) recurses.

using NodeId = std::uint32_t;

enum class NodeKind : std::uint8_t {
  literal,
  name,
  call,
  list,
  logical_not,
  negate,
  any_of,      // a or b or ...
  all_of,      // a and b and ...
  compare,     // a OP b (exactly two operands)
  arithmetic,  // a OP b OP c ... (left to right)
};

struct Step {
  BinaryOp op;
  std::uint32_t offset;  // of the operator token
};

struct Node {
  NodeKind kind{};
  std::uint32_t offset = 0;
  Value literal;
  std::string name;
  std::vector<NodeId> operands;
  std::vector<Step> steps;  // steps[i] sits between operands[i] and operands[i + 1]
};

struct SyntaxFault {
  const char* where;
  std::string message;
};

struct ParseState {
  const char* begin = nullptr;
  std::vector<Node> nodes;
  int depth = 0;

  std::uint32_t offset(const char* at) const { return static_cast<std::uint32_t>(at - begin); }
  NodeId add(Node node) {
    nodes.push_back(std::move(node));
    return static_cast<NodeId>(nodes.size() - 1);
  }
  [[gnu::noinline]] NodeId add_leaf(NodeKind kind, const char* at, Value literal = {},
                                    std::string name = {}) {
    Node node;
    node.kind = kind;
    node.offset = offset(at);
    node.literal = std::move(literal);
    node.name = std::move(name);
    return add(std::move(node));
  }
};

// One flat operator sequence as parsed, before precedence is applied.
enum class TokenKind : std::uint8_t {
  operand,
  logical_not,
  negate,
  binary,
  logical_and,
  logical_or
};

struct Token {
  TokenKind kind;
  BinaryOp op;  // for binary
  std::uint32_t offset;
  NodeId node;  // for operand
};

struct PendingExpression {
  std::vector<Token> tokens;
  int open_prefixes = 0;  // prefixes of the operand being parsed, for the depth count
};

bool is_comparison(BinaryOp op) {
  return op != BinaryOp::add && op != BinaryOp::subtract && op != BinaryOp::multiply &&
         op != BinaryOp::divide;
}

constexpr int kComparisonPrecedence = 4;

int precedence(const Token& token) {
  switch (token.kind) {
    case TokenKind::logical_or:
      return 1;
    case TokenKind::logical_and:
      return 2;
    case TokenKind::logical_not:
      return 3;
    case TokenKind::negate:
      return 7;
    case TokenKind::binary:
      if (token.op == BinaryOp::add || token.op == BinaryOp::subtract) return 5;
      if (token.op == BinaryOp::multiply || token.op == BinaryOp::divide) return 6;
      return kComparisonPrecedence;
    case TokenKind::operand:
      break;
  }
  return 0;
}

// Whether a comparison appended to `tokens` would share an operand with an
// earlier one (`a < b < c`): comparisons do not associate. Checked as the
// operator is read so the error is the first in the text.
bool continues_comparison(const std::vector<Token>& tokens) {
  for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) {
    if (it->kind == TokenKind::operand || it->kind == TokenKind::negate) continue;
    const int p = precedence(*it);
    if (p < kComparisonPrecedence) return false;
    if (p == kComparisonPrecedence) return true;
  }
  return false;
}

// Shunting-yard over one flat sequence. Left-associative runs of the same
// level (a + b - c, a and b and c) become one chain node, so the tree is
// never deeper than the nesting the parser already bounded.
NodeId build_tree(ParseState& st, const std::vector<Token>& tokens) {
  const auto first_new = static_cast<NodeId>(st.nodes.size());
  std::vector<NodeId> values;
  std::vector<const Token*> operators;
  const auto reduce = [&] {
    const Token& token = *operators.back();
    operators.pop_back();
    if (token.kind == TokenKind::logical_not || token.kind == TokenKind::negate) {
      Node node;
      node.kind = token.kind == TokenKind::negate ? NodeKind::negate : NodeKind::logical_not;
      node.offset = token.offset;
      node.operands = {values.back()};
      values.back() = st.add(std::move(node));
      return;
    }
    const NodeId right = values.back();
    values.pop_back();
    const NodeId left = values.back();
    const NodeKind kind = token.kind == TokenKind::logical_and  ? NodeKind::all_of
                          : token.kind == TokenKind::logical_or ? NodeKind::any_of
                          : is_comparison(token.op)             ? NodeKind::compare
                                                                : NodeKind::arithmetic;
    if (kind != NodeKind::compare && left >= first_new && st.nodes[left].kind == kind &&
        (kind != NodeKind::arithmetic ||
         precedence(Token{TokenKind::binary, st.nodes[left].steps.front().op, 0, 0}) ==
             precedence(token))) {
      Node& chain = st.nodes[left];
      chain.operands.push_back(right);
      chain.steps.push_back(Step{token.op, token.offset});
      return;
    }
    Node node;
    node.kind = kind;
    node.offset = token.offset;
    node.operands = {left, right};
    node.steps = {Step{token.op, token.offset}};
    values.back() = st.add(std::move(node));
  };
  for (const Token& token : tokens) {
    switch (token.kind) {
      case TokenKind::operand:
        values.push_back(token.node);
        break;
      case TokenKind::logical_not:
      case TokenKind::negate:
        operators.push_back(&token);
        break;
      default: {
        const int p = precedence(token);
        while (!operators.empty() && precedence(*operators.back()) >= p) reduce();
        operators.push_back(&token);
      }
    }
  }
  while (!operators.empty()) reduce();
  return values.back();
}

[[noreturn, gnu::noinline]] void throw_syntax(const char* at, std::string message) {
  throw SyntaxFault{at, std::move(message)};
}

[[noreturn, gnu::noinline]] void throw_too_deep(const char* at) {
  throw_syntax(at, fmt::format("expression nested too deeply (limit {})", kMaxNesting));
}

// Reads a quoted string starting at its opening quote; returns the end.
[[gnu::noinline]] const char* scan_string(const char* first, const char* last, std::string& value) {
  const char quote = *first;
  const char* it = first + 1;
  for (;;) {
    if (it == last) throw_syntax(first, "unterminated string");
    const char c = *it;
    if (c == quote) return it + 1;
    if (c != '\\') {
      value += c;
      ++it;
      continue;
    }
    const char* escape = it;
    if (++it == last) throw_syntax(first, "unterminated string");
    switch (*it) {
      case '"':
        value += '"';
        break;
      case '\'':
        value += '\'';
        break;
      case '\\':
        value += '\\';
        break;
      case 'n':
        value += '\n';
        break;
      case 't':
        value += '\t';
        break;
      default: {
        const auto left = static_cast<std::size_t>(last - it);
        const std::string_view shown(
            it, std::min(utf8_sequence_length(static_cast<unsigned char>(*it)), left));
        throw_syntax(escape,
                     fmt::format("unknown escape '\\{}' (use \\\" \\' \\\\ \\n or \\t)", shown));
      }
    }
    ++it;
  }
}

[[gnu::noinline]] NodeId add_number(ParseState& st, const char* begin, const char* end) {
  const bool percent = end[-1] == '%';
  if (percent) --end;
  double value = 0;
  const auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || stop != end || !std::isfinite(value)) {
    throw_syntax(begin, "number out of range");
  }
  if (percent) value /= 100;
  return st.add_leaf(NodeKind::literal, begin, Value(value));
}

[[gnu::noinline]] NodeId add_string(ParseState& st, const char* at, std::string& text) {
  return st.add_leaf(NodeKind::literal, at, Value(std::move(text)));
}

[[gnu::noinline]] NodeId add_name(ParseState& st, const char* begin, const char* end) {
  return st.add_leaf(NodeKind::name, begin, Value(),
                     std::string(begin, static_cast<std::size_t>(end - begin)));
}

// A call (with its function name) or a list literal.
[[gnu::noinline]] NodeId add_branch(ParseState& st, NodeKind kind, const char* at,
                                    std::vector<NodeId>& operands, std::string* name) {
  Node node;
  node.kind = kind;
  node.offset = st.offset(at);
  if (name != nullptr) node.name = std::move(*name);
  node.operands = std::move(operands);
  return st.add(std::move(node));
}

[[gnu::noinline]] void push_binary_token(PendingExpression& pending, const char* at, BinaryOp op,
                                         std::uint32_t offset) {
  if (is_comparison(op) && continues_comparison(pending.tokens)) {
    throw_syntax(at, "comparisons cannot be chained; join them with 'and' (a < b and b < c)");
  }
  pending.tokens.push_back(Token{TokenKind::binary, op, offset, 0});
}

// The token starting at `at`, for "unexpected 'xyz'".
std::string_view token_at(std::string_view text, std::size_t at) {
  if (at >= text.size()) return {};
  const char* p = text.data() + at;
  const std::size_t left = text.size() - at;
  std::size_t n = 1;
  if (is_ident_tail(*p)) {
    while (n < left && is_ident_tail(p[n])) ++n;
  } else {
    n = std::min(utf8_sequence_length(static_cast<unsigned char>(*p)), left);
  }
  return {p, std::min<std::size_t>(n, 40)};
}

// A hint for the usual slips: `=` for `==`, AND for and, and characters
// from a Chinese input method (full-width brackets, curly quotes).
std::string hint_for(std::string_view text, std::size_t at) {
  const std::string_view token = token_at(text, at);
  const auto at_text = [&](std::size_t i) { return i < text.size() ? text[i] : '\0'; };
  if (token == "=" && at_text(at + 1) != '=' &&
      (at == 0 || std::string_view("=!<>").find(text[at - 1]) == std::string_view::npos)) {
    return " (use '==' to compare)";
  }
  static constexpr std::array<std::string_view, 7> keywords = {"and",  "or",    "not", "in",
                                                               "true", "false", "null"};
  for (std::string_view keyword : keywords) {
    if (token.size() == keyword.size() && token != keyword &&
        std::equal(token.begin(), token.end(), keyword.begin(),
                   [](char a, char b) { return (a | 0x20) == b; })) {
      return fmt::format(" (keywords are lower case: '{}')", keyword);
    }
  }
  if (token.size() == 3) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(token[i]); };
    const unsigned code = ((b(0) & 0x0fu) << 12) | ((b(1) & 0x3fu) << 6) | (b(2) & 0x3fu);
    if (code >= 0xff01 && code <= 0xff5e) {
      return " (a full-width character; type it in half-width ASCII)";
    }
    if (code == 0x2018 || code == 0x2019 || code == 0x201c || code == 0x201d) {
      return " (a curly quote; use \" or ')";
    }
  }
  return {};
}

// ---------------------------------------------------------------------------
// Grammar

namespace grammar {

namespace x3 = boost::spirit::x3;
namespace fusion = boost::fusion;

struct state_tag;

template <typename Context>
ParseState& state(const Context& context) {
  return x3::get<state_tag>(context);
}

template <typename Attribute, typename Value_>
void assign(Attribute& attribute, Value_&& value) {
  if constexpr (!std::is_same_v<std::remove_const_t<Attribute>, x3::unused_type>) {
    attribute = std::forward<Value_>(value);
  }
}

// Zero-width: where the next token starts (for node offsets).
struct here_parser : x3::parser<here_parser> {
  using attribute_type = const char*;
  static const bool has_attribute = true;

  template <typename It, typename Ctx, typename RCtx, typename Attr>
  bool parse(It& first, const It& last, const Ctx& context, RCtx&, Attr& attribute) const {
    x3::skip_over(first, last, context);
    assign(attribute, first);
    return true;
  }
};
constexpr here_parser here{};

// After a committed token the rest must follow; a miss is the syntax error,
// reported where the missing thing should have started.
template <typename Subject>
struct must_parser : x3::unary_parser<Subject, must_parser<Subject>> {
  using base_type = x3::unary_parser<Subject, must_parser<Subject>>;
  static const bool is_pass_through_unary = true;
  const char* message;

  constexpr must_parser(const Subject& subject, const char* message_)
      : base_type(subject), message(message_) {}

  template <typename It, typename Ctx, typename RCtx, typename Attr>
  bool parse(It& first, const It& last, const Ctx& context, RCtx& rcontext, Attr& attribute) const {
    if (this->subject.parse(first, last, context, rcontext, attribute)) return true;
    It at = first;
    x3::skip_over(at, last, context);
    throw_syntax(at, message);
  }
};

template <typename Subject>
constexpr auto must(const Subject& subject, const char* message) {
  return must_parser<typename x3::extension::as_parser<Subject>::value_type>(x3::as_parser(subject),
                                                                             message);
}

// Opens one level of nesting (a bracket or a unary operator); everything
// after it is committed (must), so the matching `closing` always runs unless
// an exception unwinds the whole parse.
template <typename Subject>
struct opening_parser : x3::unary_parser<Subject, opening_parser<Subject>> {
  using base_type = x3::unary_parser<Subject, opening_parser<Subject>>;
  static const bool is_pass_through_unary = true;

  constexpr explicit opening_parser(const Subject& subject) : base_type(subject) {}

  template <typename It, typename Ctx, typename RCtx, typename Attr>
  bool parse(It& first, const It& last, const Ctx& context, RCtx& rcontext, Attr& attribute) const {
    x3::skip_over(first, last, context);
    const It at = first;
    if (!this->subject.parse(first, last, context, rcontext, attribute)) return false;
    if (++state(context).depth > kMaxNesting) {
      throw_too_deep(at);
    }
    return true;
  }
};

struct opening_gen {
  template <typename Subject>
  constexpr opening_parser<typename x3::extension::as_parser<Subject>::value_type> operator[](
      const Subject& subject) const {
    return opening_parser<typename x3::extension::as_parser<Subject>::value_type>(
        x3::as_parser(subject));
  }
};
constexpr opening_gen opening{};

struct closing_parser : x3::parser<closing_parser> {
  using attribute_type = x3::unused_type;
  static const bool has_attribute = false;

  template <typename It, typename Ctx, typename RCtx, typename Attr>
  bool parse(It&, const It&, const Ctx& context, RCtx&, Attr&) const {
    --state(context).depth;
    return true;
  }
};
constexpr closing_parser closing{};

// "..." or '...' with \" \' \\ \n \t; reported at the opening quote when
// unterminated, since the end of the text says nothing about where.
struct string_literal_parser : x3::parser<string_literal_parser> {
  using attribute_type = std::string;
  static const bool has_attribute = true;

  template <typename It, typename Ctx, typename RCtx, typename Attr>
  bool parse(It& first, const It& last, const Ctx& context, RCtx&, Attr& attribute) const {
    x3::skip_over(first, last, context);
    if (first == last || (*first != '"' && *first != '\'')) return false;
    std::string value;
    first = scan_string(first, last, value);
    assign(attribute, std::move(value));
    return true;
  }
};
constexpr string_literal_parser string_literal{};

const auto digit = x3::char_("0-9");
const auto ident_head = x3::char_("a-zA-Z_");
const auto ident_tail = x3::char_("a-zA-Z0-9_");

// Keywords end where an identifier would: `order` is not `or` + `der`.
auto keyword(const char* word) { return x3::lexeme[x3::lit(word) >> !ident_tail]; }

const auto any_keyword =
    x3::lexeme[(x3::lit("and") | "or" | "not" | "in" | "true" | "false" | "null") >> !ident_tail];
const auto identifier = x3::lexeme[!any_keyword >> ident_head >> *ident_tail];
// Later segments may be keywords (`form.in`): after a dot nothing else fits.
const auto dotted_path =
    x3::lexeme[!any_keyword >> ident_head >> *ident_tail >>
               *('.' >> must(ident_head >> *ident_tail, "expected a field name after '.'"))];
const auto number_text =
    x3::lexeme[+digit >> -('.' >> +digit) >> -(x3::char_("eE") >> -x3::char_("+-") >> +digit) >>
               -x3::lit('%')];

const auto or_op = keyword("or") | x3::lit("||");
const auto and_op = keyword("and") | x3::lit("&&");
const auto not_op = keyword("not") | x3::lexeme['!' >> !x3::lit('=')];

struct symbolic_comparisons_t : x3::symbols<BinaryOp> {
  symbolic_comparisons_t() {
    add("==", BinaryOp::equal)("!=", BinaryOp::not_equal)("<", BinaryOp::less)(
        "<=", BinaryOp::less_equal)(">", BinaryOp::greater)(">=", BinaryOp::greater_equal);
  }
};
const symbolic_comparisons_t symbolic_comparisons;

struct additive_ops_t : x3::symbols<BinaryOp> {
  additive_ops_t() { add("+", BinaryOp::add)("-", BinaryOp::subtract); }
};
const additive_ops_t additive_ops;

struct multiplicative_ops_t : x3::symbols<BinaryOp> {
  multiplicative_ops_t() { add("*", BinaryOp::multiply)("/", BinaryOp::divide); }
};
const multiplicative_ops_t multiplicative_ops;

// --- semantic actions -------------------------------------------------------

// Actions stay thin and call out-of-line helpers: their locals would
// otherwise sit in the frames of the recursive rules.

const auto make_number = [](auto& ctx) {
  const auto& range = x3::_attr(ctx);
  x3::_val(ctx) =
      add_number(state(ctx), &*range.begin(), &*range.begin() + (range.end() - range.begin()));
};

const auto make_string = [](auto& ctx) {
  auto& attribute = x3::_attr(ctx);
  x3::_val(ctx) = add_string(state(ctx), fusion::at_c<0>(attribute), fusion::at_c<1>(attribute));
};

auto make_constant(Value constant) {
  return [constant](auto& ctx) {
    x3::_val(ctx) = state(ctx).add_leaf(NodeKind::literal, x3::_attr(ctx), constant);
  };
}

const auto make_name = [](auto& ctx) {
  const auto& range = x3::_attr(ctx);
  x3::_val(ctx) =
      add_name(state(ctx), &*range.begin(), &*range.begin() + (range.end() - range.begin()));
};

const auto push_item = [](auto& ctx) { x3::_val(ctx).push_back(x3::_attr(ctx)); };

const auto make_call = [](auto& ctx) {
  auto& attribute = x3::_attr(ctx);
  x3::_val(ctx) = add_branch(state(ctx), NodeKind::call, fusion::at_c<0>(attribute),
                             fusion::at_c<2>(attribute), &fusion::at_c<1>(attribute));
};

const auto make_list = [](auto& ctx) {
  auto& attribute = x3::_attr(ctx);
  x3::_val(ctx) = add_branch(state(ctx), NodeKind::list, fusion::at_c<0>(attribute),
                             fusion::at_c<1>(attribute), nullptr);
};

// An operator or operand of one flat operator sequence (see `sequence`).
const auto push_operand = [](auto& ctx) {
  PendingExpression& pending = x3::_val(ctx);
  pending.tokens.push_back(Token{TokenKind::operand, BinaryOp::equal, 0, x3::_attr(ctx)});
  // The prefixes of this operand close with it.
  state(ctx).depth -= pending.open_prefixes;
  pending.open_prefixes = 0;
};

auto push_prefix(TokenKind kind) {
  return [kind](auto& ctx) {
    PendingExpression& pending = x3::_val(ctx);
    pending.tokens.push_back(Token{kind, BinaryOp::equal, state(ctx).offset(x3::_attr(ctx)), 0});
    ++pending.open_prefixes;
  };
}

const auto push_logical = [](auto& ctx) {
  auto& attribute = x3::_attr(ctx);
  x3::_val(ctx).tokens.push_back(Token{fusion::at_c<1>(attribute), BinaryOp::equal,
                                       state(ctx).offset(fusion::at_c<0>(attribute)), 0});
};

const auto push_binary = [](auto& ctx) {
  auto& attribute = x3::_attr(ctx);
  push_binary_token(x3::_val(ctx), fusion::at_c<0>(attribute), fusion::at_c<1>(attribute),
                    state(ctx).offset(fusion::at_c<0>(attribute)));
};

const auto build = [](auto& ctx) { x3::_val(ctx) = build_tree(state(ctx), x3::_attr(ctx).tokens); };

// --- rules -----------------------------------------------------------------
//
// Precedence is not spelled out as one rule per level: an expression is
// parsed as a flat sequence `term (operator term)*` and arranged into a tree
// by build_tree(). One level of parentheses then costs four rule frames
// instead of ten, and prefix chains (`not not ...`, `- - ...`) are loops.

const x3::rule<class expression_class, NodeId> expression = "expression";
const x3::rule<class sequence_class, PendingExpression> sequence = "sequence";
const x3::rule<class logical_kind_class, TokenKind> logical_kind = "logical_kind";
const x3::rule<class binary_kind_class, BinaryOp> binary_kind = "binary_kind";
const x3::rule<class comparison_op_class, BinaryOp> comparison_op = "comparison_op";
const x3::rule<class primary_class, NodeId> primary = "primary";
const x3::rule<class number_class, NodeId> number = "number";
const x3::rule<class string_class, NodeId> string = "string";
const x3::rule<class constant_class, NodeId> constant = "constant";
const x3::rule<class list_class, NodeId> list = "list";
const x3::rule<class list_items_class, std::vector<NodeId>> list_items = "list_items";
const x3::rule<class parenthesized_class, NodeId> parenthesized = "parenthesized";
const x3::rule<class call_class, NodeId> call = "call";
const x3::rule<class function_name_class, std::string> function_name = "function_name";
const x3::rule<class arguments_class, std::vector<NodeId>> arguments = "arguments";
const x3::rule<class name_class, NodeId> name = "name";

constexpr const char* kExpectedOperand = "expected an operand";

const auto expression_def = sequence[build];

// `not` may open an operand of and/or only (as if it had its own level
// between them and the comparisons); `-` may open any operand.
const auto negate_prefix = (here >> opening[x3::lit('-')])[push_prefix(TokenKind::negate)];
const auto not_prefix = (here >> opening[not_op])[push_prefix(TokenKind::logical_not)];
const auto arithmetic_term =
    (+negate_prefix >> must(primary, kExpectedOperand)[push_operand]) | primary[push_operand];
const auto logical_term =
    (+not_prefix >> must(arithmetic_term, kExpectedOperand)) | arithmetic_term;
const auto logical_op = (here >> logical_kind)[push_logical];
const auto binary_op = (here >> binary_kind)[push_binary];

const auto sequence_def = logical_term >> *((logical_op >> must(logical_term, kExpectedOperand)) |
                                            (binary_op >> must(arithmetic_term, kExpectedOperand)));

const auto logical_kind_def =
    (or_op >> x3::attr(TokenKind::logical_or)) | (and_op >> x3::attr(TokenKind::logical_and));
const auto binary_kind_def = comparison_op | additive_ops | multiplicative_ops;

const auto comparison_op_def = symbolic_comparisons | (keyword("in") >> x3::attr(BinaryOp::in)) |
                               (keyword("not") >> keyword("in") >> x3::attr(BinaryOp::not_in));

const auto primary_def = number | string | constant | list | parenthesized | call | name;

const auto number_def = x3::raw[number_text][make_number];
const auto string_def = (here >> string_literal)[make_string];
const auto constant_def = (here >> keyword("true"))[make_constant(Value(true))] |
                          (here >> keyword("false"))[make_constant(Value(false))] |
                          (here >> keyword("null"))[make_constant(Value())];

const auto list_def = (here >> opening['['] >> list_items >> closing)[make_list];
const auto list_items_def =
    x3::lit(']') | (must(expression, kExpectedOperand)[push_item] >>
                    *(',' >> must(expression, kExpectedOperand)[push_item]) >>
                    must(x3::lit(']'), "expected ',' or ']'"));

const auto parenthesized_def = opening['('] >> must(expression, kExpectedOperand) >>
                               must(x3::lit(')'), "expected ')'") >> closing;

const auto call_def = (here >> function_name >> opening['('] >> arguments >> closing)[make_call];
const auto function_name_def = x3::raw[identifier];
const auto arguments_def =
    x3::lit(')') | (must(expression, kExpectedOperand)[push_item] >>
                    *(',' >> must(expression, kExpectedOperand)[push_item]) >>
                    must(x3::lit(')'), "expected ',' or ')'"));

const auto name_def = x3::raw[dotted_path][make_name];

// BOOST_SPIRIT_DEFINE with the rule bodies kept out of line: inlined into
// one another, the rules on the recursive path (expression, sequence,
// primary, parenthesized, list, call) make one huge frame per nesting
// level, several kilobytes with sanitizers.
#define ONESTOP_EXPR_DEFINE_RULE(r, data, rule_name)                                            \
  template <typename Iterator, typename Context>                                                \
  [[gnu::noinline]] bool parse_rule(decltype(rule_name), Iterator& first, const Iterator& last, \
                                    const Context& context,                                     \
                                    decltype(rule_name)::attribute_type& attr) {                \
    static const auto def = (rule_name = BOOST_PP_CAT(rule_name, _def));                        \
    return def.parse(first, last, context, boost::spirit::x3::unused, attr);                    \
  }
#define ONESTOP_EXPR_DEFINE(...) \
  BOOST_PP_SEQ_FOR_EACH(ONESTOP_EXPR_DEFINE_RULE, _, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))

ONESTOP_EXPR_DEFINE(expression, sequence, logical_kind, binary_kind, comparison_op, primary, number,
                    string, constant, list, list_items, parenthesized, call, function_name,
                    arguments, name)

const auto blank = x3::char_(" \t\r\n\f\v");

}  // namespace grammar

// Returns the root node, or reports the first syntax error.
std::optional<NodeId> parse(std::string_view text, ParseState& st, std::vector<ExprError>& errors) {
  const char* first = text.data();
  const char* const last = text.data() + text.size();
  st.begin = first;
  const auto report = [&](const char* at, std::string message) {
    const auto offset = static_cast<std::size_t>(at - text.data());
    errors.push_back(ExprError{offset, std::move(message) + hint_for(text, offset)});
    return std::nullopt;
  };
  NodeId root = 0;
  try {
    const bool matched = boost::spirit::x3::phrase_parse(
        first, last, boost::spirit::x3::with<grammar::state_tag>(st)[grammar::expression],
        grammar::blank, root);
    if (!matched) return report(first, grammar::kExpectedOperand);
  } catch (const SyntaxFault& fault) {
    return report(fault.where, fault.message);
  }
  if (first != last) {
    const std::string_view token = token_at(text, static_cast<std::size_t>(first - text.data()));
    return report(first, fmt::format("unexpected '{}'", token));
  }
  return root;
}

// ---------------------------------------------------------------------------
// Compiler

class Compiler {
 public:
  Compiler(const ParseState& parsed, const ExprScope& scope, detail::Program& program,
           std::vector<ExprError>& errors)
      : nodes_(parsed.nodes), scope_(scope), program_(program), errors_(errors) {}

  void compile_root(NodeId root) {
    compile(root);
    compact_constants();
    program_.stack_size = static_cast<std::uint32_t>(std::max(max_depth_, 1));
  }

 private:
  // What the compiler knows about a compiled operand. When `constant` is
  // set its code is exactly one push_constant at the end of the program.
  struct Operand {
    TypeSet types = kAnyType;
    std::optional<std::uint32_t> constant;
  };

  const std::vector<Node>& nodes_;
  const ExprScope& scope_;
  detail::Program& program_;
  std::vector<ExprError>& errors_;
  int depth_ = 0;
  int max_depth_ = 0;

  void error(std::uint32_t offset, std::string message) {
    errors_.push_back(ExprError{offset, std::move(message)});
  }

  void emit(Op op, std::uint32_t arg, int stack_effect, std::uint8_t sub = 0) {
    program_.code.push_back(Instruction{op, sub, arg});
    depth_ += stack_effect;
    max_depth_ = std::max(max_depth_, depth_);
  }

  [[gnu::noinline]] Operand push_constant(Value value) {
    const TypeSet types = type_bit(value.type());
    program_.constants.push_back(std::move(value));
    const auto index = static_cast<std::uint32_t>(program_.constants.size() - 1);
    emit(Op::push_constant, index, +1);
    return Operand{types, index};
  }

  // Replaces the trailing push_constant of `count` constant operands.
  void drop_constants(std::size_t count) {
    program_.code.resize(program_.code.size() - count);
    depth_ -= static_cast<int>(count);
  }

  // After an error: keep the stack shape, stay silent about the result.
  [[gnu::noinline]] Operand placeholder() {
    emit(Op::push_constant, push_value_only(Value()), +1);
    return Operand{kAnyType, std::nullopt};
  }

  std::uint32_t push_value_only(Value value) {
    program_.constants.push_back(std::move(value));
    return static_cast<std::uint32_t>(program_.constants.size() - 1);
  }

  static std::uint32_t intern(std::vector<std::string>& table, std::string_view name) {
    const auto it = std::find(table.begin(), table.end(), name);
    if (it != table.end()) return static_cast<std::uint32_t>(it - table.begin());
    table.emplace_back(name);
    return static_cast<std::uint32_t>(table.size() - 1);
  }

  // The recursive walk. Only this function and the compile_* walkers sit
  // on the stack once per nesting level (up to kMaxNesting times several
  // node levels), so everything with sizeable locals - folding, static
  // checks, message formatting - lives in non-inlined finish_* helpers.
  Operand compile(NodeId id) {
    const Node& node = nodes_[id];
    switch (node.kind) {
      case NodeKind::literal:
        return push_constant(node.literal);
      case NodeKind::name:
        return compile_name(node);
      case NodeKind::call:
        return compile_call(node);
      case NodeKind::list:
        return compile_list(node);
      case NodeKind::logical_not:
        return finish_not(compile(node.operands[0]));
      case NodeKind::negate:
        return finish_negate(compile(node.operands[0]), node.offset);
      case NodeKind::any_of:
        return compile_logical(node, false);
      case NodeKind::all_of:
        return compile_logical(node, true);
      case NodeKind::compare:
      case NodeKind::arithmetic:
        return compile_chain(node);
    }
    return placeholder();
  }

  [[gnu::noinline]] Operand compile_chain(const Node& node) {
    Operand left = compile(node.operands[0]);
    for (std::size_t i = 0; i < node.steps.size(); ++i) {
      const Operand right = compile(node.operands[i + 1]);
      left = finish_binary(node.steps[i], left, right);
    }
    return left;
  }

  [[gnu::noinline]] Operand finish_not(Operand operand) {
    if (operand.constant) {
      const bool value = !program_.constants[*operand.constant].truthy();
      drop_constants(1);
      return push_constant(value);
    }
    emit(Op::logical_not, 0, 0);
    return Operand{type_bit(Value::Type::boolean), std::nullopt};
  }

  [[gnu::noinline]] Operand finish_negate(Operand operand, std::uint32_t offset) {
    const std::array operands = {operand};
    return operation(operands, offset, Op::negate, 0, 0,
                     [](const auto& args, std::size_t) { return negate(args[0]); });
  }

  [[gnu::noinline]] Operand finish_binary(Step step, Operand left, Operand right) {
    const BinaryOp op = step.op;
    // The one value-dependent failure a literal can force whatever the
    // other side holds; the type-based check cannot phrase it.
    if (op == BinaryOp::divide && right.constant &&
        program_.constants[*right.constant] == Value(0)) {
      error(step.offset, "division by zero");
      drop_stack(2);
      return placeholder();
    }
    const std::array operands = {left, right};
    return operation(
        operands, step.offset, Op::binary, 0, static_cast<std::uint8_t>(op),
        [op](const auto& args, std::size_t) { return apply_binary(op, args[0], args[1]); });
  }

  std::string known_names() const {
    std::string out;
    for (const std::string& root : scope_.roots) {
      out += out.empty() ? "" : ", ";
      out += root + ".*";
    }
    for (const std::string& name : scope_.names) {
      out += out.empty() ? "" : ", ";
      out += name;
    }
    return out.empty() ? "no names are available here" : "known: " + out;
  }

  static bool listed(const std::vector<std::string>& list, std::string_view name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  }

  [[gnu::noinline]] Operand compile_name(const Node& node) {
    const std::string& name = node.name;
    const std::size_t dot = name.find('.');
    const std::string_view root = std::string_view(name).substr(0, dot);
    if (dot != std::string::npos ? listed(scope_.roots, root) : listed(scope_.names, name)) {
      emit(Op::load_field, intern(program_.fields, name), +1);
      return Operand{kAnyType, std::nullopt};
    }
    if (dot == std::string::npos && listed(scope_.roots, name)) {
      error(node.offset,
            fmt::format("'{}' alone is not a value; name one of its fields, e.g. '{}.<field>'",
                        name, name));
      return placeholder();
    }
    std::string suggestion;
    if (dot != std::string::npos) {
      const std::vector<std::string_view> roots(scope_.roots.begin(), scope_.roots.end());
      const std::string_view near = closest(root, roots);
      if (!near.empty()) suggestion = std::string(near) + name.substr(dot);
    } else {
      const std::vector<std::string_view> names(scope_.names.begin(), scope_.names.end());
      suggestion = std::string(closest(name, names));
    }
    std::string message = fmt::format("unknown name '{}' ({})", clip(name, 80), known_names());
    if (!suggestion.empty()) message += fmt::format("; did you mean '{}'?", suggestion);
    error(node.offset, std::move(message));
    return placeholder();
  }

  [[gnu::noinline]] Operand compile_list(const Node& node) {
    bool all_constant = true;
    for (NodeId item : node.operands) all_constant &= compile(item).constant.has_value();
    return finish_list(node.operands.size(), all_constant);
  }

  [[gnu::noinline]] Operand finish_list(std::size_t count, bool all_constant) {
    if (all_constant) {
      Value::List items;
      items.reserve(count);
      const std::size_t first = program_.code.size() - count;
      for (std::size_t i = 0; i < count; ++i) {
        items.push_back(program_.constants[program_.code[first + i].arg]);
      }
      drop_constants(count);
      return push_constant(Value(std::move(items)));
    }
    emit(Op::make_list, static_cast<std::uint32_t>(count), 1 - static_cast<int>(count));
    return Operand{type_bit(Value::Type::list), std::nullopt};
  }

  [[gnu::noinline]] Operand compile_logical(const Node& node, bool is_and) {
    const std::size_t start = program_.code.size();
    const int start_depth = depth_;
    std::vector<std::size_t> jumps;
    bool all_constant = true;
    bool decided = false;  // by a constant: falsy under and, truthy under or
    for (std::size_t i = 0; i < node.operands.size(); ++i) {
      const Operand operand = compile(node.operands[i]);
      if (operand.constant) {
        decided |= program_.constants[*operand.constant].truthy() != is_and;
      } else {
        all_constant = false;
      }
      if (i + 1 < node.operands.size()) {
        jumps.push_back(program_.code.size());
        emit(is_and ? Op::and_jump : Op::or_jump, 0, -1);
      }
    }
    return finish_logical(start, start_depth, is_and, all_constant, decided, jumps);
  }

  [[gnu::noinline]] Operand finish_logical(std::size_t start, int start_depth, bool is_and,
                                           bool all_constant, bool decided,
                                           const std::vector<std::size_t>& jumps) {
    if (all_constant) {
      program_.code.resize(start);
      depth_ = start_depth;
      return push_constant(decided ? !is_and : is_and);
    }
    emit(Op::to_bool, 0, 0);
    for (std::size_t jump : jumps) {
      program_.code[jump].arg = static_cast<std::uint32_t>(program_.code.size());
    }
    return Operand{type_bit(Value::Type::boolean), std::nullopt};
  }

  [[gnu::noinline]] Operand compile_call(const Node& node) {
    const BuiltinInfo* builtin = resolve_call(node);
    if (builtin == nullptr) return discard_arguments(node);
    if (builtin->id == Builtin::has) return compile_has(node);
    std::vector<Operand> operands;
    operands.reserve(node.operands.size());
    for (NodeId argument : node.operands) operands.push_back(compile(argument));
    return finish_call(builtin->id, operands, node.offset);
  }

  // The function named by a call, or null after reporting why not.
  [[gnu::noinline]] const BuiltinInfo* resolve_call(const Node& node) {
    const BuiltinInfo* builtin = find_builtin(node.name);
    const std::size_t argc = node.operands.size();
    if (builtin == nullptr) {
      std::vector<std::string_view> names;
      std::string known;
      for (const BuiltinInfo& info : kBuiltins) {
        names.push_back(info.name);
        known += known.empty() ? "" : ", ";
        known += info.name;
      }
      std::string message =
          fmt::format("unknown function '{}' (known: {})", clip(node.name, 80), known);
      const std::string_view near = closest(node.name, names);
      if (!near.empty()) message += fmt::format("; did you mean '{}'?", near);
      error(node.offset, std::move(message));
      return nullptr;
    }
    if (argc < builtin->min_args || argc > builtin->max_args) {
      const std::string expected =
          builtin->max_args == kVariadic
              ? fmt::format("at least {} argument{}", builtin->min_args,
                            builtin->min_args == 1 ? "" : "s")
              : fmt::format("{} argument{}", builtin->min_args, builtin->min_args == 1 ? "" : "s");
      error(node.offset, fmt::format("{}() takes {}, not {} (usage: {})", builtin->name, expected,
                                     argc, builtin->usage));
      return nullptr;
    }
    return builtin;
  }

  [[gnu::noinline]] Operand finish_call(Builtin fn, const std::vector<Operand>& operands,
                                        std::uint32_t offset) {
    return operation(std::span<const Operand>(operands), offset, Op::call,
                     static_cast<std::uint32_t>(operands.size()), static_cast<std::uint8_t>(fn),
                     [fn](const auto& args, std::size_t n) { return call_builtin(fn, args, n); });
  }

  // The arguments of a bad call are still checked, so that every problem
  // in the expression is reported at once.
  [[gnu::noinline]] Operand discard_arguments(const Node& node) {
    for (NodeId argument : node.operands) compile(argument);
    drop_stack(node.operands.size());
    return placeholder();
  }

  void drop_stack(std::size_t count) {
    // Only reached on error paths: the program is discarded, but the stack
    // accounting must stay balanced for the checks that follow.
    depth_ -= static_cast<int>(count);
  }

  [[gnu::noinline]] Operand compile_has(const Node& node) {
    const Node& argument = nodes_[node.operands[0]];
    std::string id;
    if (argument.kind == NodeKind::name && argument.name.find('.') == std::string::npos) {
      id = argument.name;
    } else if (argument.kind == NodeKind::literal && is(argument.literal, Value::Type::string) &&
               !argument.literal.as_string().empty()) {
      id = argument.literal.as_string();
    } else {
      error(argument.offset,
            "has() takes a material id, e.g. has(business_licence) or has(\"business_licence\")");
      return placeholder();
    }
    emit(Op::has_material, intern(program_.materials, id), +1);
    return Operand{type_bit(Value::Type::boolean), std::nullopt};
  }

  std::string describe_static(const Operand& operand) const {
    if (operand.constant) return describe(program_.constants[*operand.constant]);
    const TypeSet types = operand.types == kNullOnly ? kNullOnly : (operand.types & ~kNullOnly);
    if (types == (kAnyType & ~kNullOnly)) return "any value";
    std::string out;
    for (Value::Type type : kEveryType) {
      if ((types & type_bit(type)) == 0) continue;
      out += out.empty() ? "" : " or ";
      out += to_string(type);
    }
    return out;
  }

  // Folds an operation whose operands are all constants, else checks that
  // some combination of the operands' possible types is accepted, and
  // emits it. A non-constant operand being null is not counted as such a
  // combination: an expression that only works on missing data is a bug.
  template <typename Apply>
  [[gnu::noinline]] Operand operation(std::span<const Operand> operands, std::uint32_t offset,
                                      Op op, std::uint32_t arg, std::uint8_t sub,
                                      const Apply& apply) {
    const std::size_t n = operands.size();
    const bool all_constant = std::all_of(operands.begin(), operands.end(),
                                          [](const Operand& o) { return o.constant.has_value(); });
    if (all_constant) {
      std::vector<const Value*> values;
      for (const Operand& o : operands) values.push_back(&program_.constants[*o.constant]);
      try {
        Value result = apply(PointerArgs{values.data()}, n);
        drop_constants(n);
        return push_constant(std::move(result));
      } catch (const OperationFault& fault) {
        error(offset, fault.message);
        drop_stack(n);
        return placeholder();
      }
    }
    const int effect = op == Op::call ? 1 - static_cast<int>(n) : (n == 2 ? -1 : 0);
    emit(op, arg, effect, sub);
    // min()/max() take any number of arguments; checking every combination
    // of many would cost more than it finds.
    if (n > 3) return Operand{kAnyType, std::nullopt};
    TypeSet result_types = 0;
    bool accepted = false;
    std::optional<OperationFault> first_fault;
    std::array<std::size_t, 3> choice{};
    std::array<const Value*, 3> args{};
    const auto candidates = [&](std::size_t i) {
      return operands[i].constant ? std::size_t{1} : kEveryType.size();
    };
    for (;;) {
      bool viable = true;
      bool assumes_missing = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (operands[i].constant) {
          args[i] = &program_.constants[*operands[i].constant];
          continue;
        }
        const Value::Type type = kEveryType[choice[i]];
        viable &= (operands[i].types & type_bit(type)) != 0;
        assumes_missing |= type == Value::Type::null && operands[i].types != kNullOnly;
        args[i] = &sample_of(type);
      }
      if (viable) {
        try {
          const Value result = apply(PointerArgs{args.data()}, n);
          result_types |= type_bit(result.type());
          accepted |= !assumes_missing;
        } catch (const OperationFault& fault) {
          if (!first_fault && !assumes_missing) first_fault = fault;
        }
      }
      std::size_t i = 0;
      while (i < n && ++choice[i] == candidates(i)) choice[i++] = 0;
      if (i == n) break;
    }
    if (!accepted && first_fault) {
      const auto operand_text = [&](int index) {
        return index >= 0 && static_cast<std::size_t>(index) < n ? describe_static(operands[index])
                                                                 : std::string();
      };
      error(offset,
            fmt::format(fmt::runtime(first_fault->pattern), operand_text(first_fault->operands[0]),
                        operand_text(first_fault->operands[1])));
      return Operand{kAnyType, std::nullopt};
    }
    return Operand{result_types == 0 ? kAnyType : result_types, std::nullopt};
  }

  // Folding leaves unused constants behind; keep only the referenced ones.
  void compact_constants() {
    std::vector<Value> kept;
    for (Instruction& instruction : program_.code) {
      if (instruction.op != Op::push_constant) continue;
      kept.push_back(std::move(program_.constants[instruction.arg]));
      instruction.arg = static_cast<std::uint32_t>(kept.size() - 1);
    }
    program_.constants = std::move(kept);
  }
};

// ---------------------------------------------------------------------------
// Evaluator: a value stack whose slots either point at a program constant
// (no copy of constant strings and lists) or own a computed value.

struct Slot {
  const Value* ref = nullptr;
  Value own;

  void hold(Value value) {
    own = std::move(value);
    ref = &own;
  }
};

class SlotStack {
 public:
  explicit SlotStack(std::size_t size) : size_(size) {
    void* memory =
        size <= kInline ? static_cast<void*>(inline_) : ::operator new(size * sizeof(Slot));
    std::uninitialized_default_construct_n(static_cast<Slot*>(memory), size);
    slots_ = std::launder(static_cast<Slot*>(memory));
  }
  ~SlotStack() {
    std::destroy_n(slots_, size_);
    if (size_ > kInline) ::operator delete(static_cast<void*>(slots_));
  }
  SlotStack(const SlotStack&) = delete;
  SlotStack& operator=(const SlotStack&) = delete;

  Slot* data() { return slots_; }

 private:
  static constexpr std::size_t kInline = 16;
  alignas(Slot) std::byte inline_[kInline * sizeof(Slot)];
  std::size_t size_;
  Slot* slots_;
};

struct SlotArgs {
  const Slot* base;
  const Value& operator[](std::size_t i) const { return *base[i].ref; }
};

// Leaves the result in slots[0].
void run(const detail::Program& program, const ExprContext& context, Slot* slots) {
  const Instruction* const code = program.code.data();
  const std::size_t size = program.code.size();
  std::size_t sp = 0;  // slots in use
  for (std::size_t pc = 0; pc < size;) {
    const Instruction& in = code[pc++];
    switch (in.op) {
      case Op::push_constant:
        slots[sp++].ref = &program.constants[in.arg];
        break;
      case Op::load_field:
        slots[sp++].hold(context.field(program.fields[in.arg]));
        break;
      case Op::has_material:
        slots[sp++].hold(context.has_material(program.materials[in.arg]));
        break;
      case Op::and_jump:
      case Op::or_jump: {
        Slot& top = slots[sp - 1];
        const bool decided = top.ref->truthy() == (in.op == Op::or_jump);
        if (decided) {
          top.hold(in.op == Op::or_jump);
          pc = in.arg;
        } else {
          --sp;
        }
        break;
      }
      case Op::to_bool:
        slots[sp - 1].hold(slots[sp - 1].ref->truthy());
        break;
      case Op::logical_not:
        slots[sp - 1].hold(!slots[sp - 1].ref->truthy());
        break;
      case Op::negate:
        slots[sp - 1].hold(negate(*slots[sp - 1].ref));
        break;
      case Op::binary: {
        const Value& a = *slots[sp - 2].ref;
        const Value& b = *slots[sp - 1].ref;
        const auto op = static_cast<BinaryOp>(in.sub);
        Value result = apply_binary(op, a, b);
        --sp;
        slots[sp - 1].hold(std::move(result));
        break;
      }
      case Op::make_list: {
        const std::size_t count = in.arg;
        Value::List items;
        items.reserve(count);
        for (std::size_t i = sp - count; i < sp; ++i) items.push_back(*slots[i].ref);
        sp -= count;
        slots[sp++].hold(Value(std::move(items)));
        break;
      }
      case Op::call: {
        const std::size_t argc = in.arg;
        Value result =
            call_builtin(static_cast<Builtin>(in.sub), SlotArgs{slots + (sp - argc)}, argc);
        sp -= argc;
        slots[sp++].hold(std::move(result));
        break;
      }
    }
  }
}

std::string quoted_text(const std::string& text) { return clip(text, 200); }

const detail::Program& checked(const std::shared_ptr<const detail::Program>& program) {
  if (!program)
    throw Error(ErrorCode::invalid_state, "evaluating an expression that did not compile");
  return *program;
}

}  // namespace

// ---------------------------------------------------------------------------
// Expr

Expr Expr::compile(std::string_view text, const ExprScope& scope, std::vector<ExprError>& errors) {
  if (text.size() > kMaxTextBytes) {
    errors.push_back(ExprError{
        kMaxTextBytes,
        fmt::format("expression too long ({} bytes; limit {})", text.size(), kMaxTextBytes)});
    return {};
  }
  if (std::all_of(text.begin(), text.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
      })) {
    errors.push_back(ExprError{0, "empty expression"});
    return {};
  }
  ParseState parsed;
  const std::optional<NodeId> root = parse(text, parsed, errors);
  if (!root) return {};

  auto program = std::make_shared<detail::Program>();
  program->text = std::string(text);
  const std::size_t errors_before = errors.size();
  Compiler(parsed, scope, *program, errors).compile_root(*root);
  if (errors.size() != errors_before) return {};
  Expr expr;
  expr.program_ = std::move(program);
  return expr;
}

const std::string& Expr::text() const noexcept {
  static const std::string empty;
  return program_ ? program_->text : empty;
}

const std::vector<std::string>& Expr::materials() const noexcept {
  static const std::vector<std::string> none;
  return program_ ? program_->materials : none;
}

const std::vector<std::string>& Expr::fields() const noexcept {
  static const std::vector<std::string> none;
  return program_ ? program_->fields : none;
}

namespace {

// Runs a program; a fault becomes Error(invalid_input) naming the expression.
void run_checked(const detail::Program& program, const ExprContext& context, Slot* stack) {
  try {
    run(program, context, stack);
  } catch (const OperationFault& fault) {
    throw Error(ErrorCode::invalid_input,
                fmt::format("{} in '{}'", fault.message, quoted_text(program.text)));
  }
}

}  // namespace

Value Expr::evaluate(const ExprContext& context) const {
  const detail::Program& program = checked(program_);
  SlotStack stack(program.stack_size);
  run_checked(program, context, stack.data());
  Slot& result = stack.data()[0];
  return result.ref == &result.own ? std::move(result.own) : *result.ref;
}

bool Expr::test(const ExprContext& context) const {
  const detail::Program& program = checked(program_);
  SlotStack stack(program.stack_size);
  run_checked(program, context, stack.data());
  return stack.data()[0].ref->truthy();
}

}  // namespace onestop
