#include "definitions/reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace onestop::yaml {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

std::string join_quoted(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  return out;
}

}  // namespace

std::string closest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (auto c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return std::string(best);
}

bool is_identifier(std::string_view s) noexcept {
  if (s.empty() || s.size() > 128) return false;
  if (!std::isalnum(static_cast<unsigned char>(s.front()))) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

void Reader::report(Severity severity, const Node* node, std::string code, std::string message,
                    std::string hint) {
  diagnostics_.push_back(
      Diagnostic{severity, at(node), std::move(code), std::move(message), std::move(hint)});
}

void Reader::error_at(SourceLocation where, std::string code, std::string message) {
  diagnostics_.push_back(
      Diagnostic{Severity::error, std::move(where), std::move(code), std::move(message), {}});
}

std::optional<std::string> Reader::text(const Node* node, std::string_view what) {
  if (node == nullptr) return std::nullopt;
  if (!node->is_scalar()) {
    error(node, "wrong-type", fmt::format("{} must be a string, not {}", what, node->describe()));
    return std::nullopt;
  }
  return node->value;
}

std::optional<std::string> Reader::identifier(const Node* node, std::string_view what) {
  auto s = text(node, what);
  if (s && !is_identifier(*s)) {
    error(node, "bad-value",
          fmt::format("{} '{}' is not an identifier (letters, digits, '_', '-', '.')", what, *s));
    return std::nullopt;
  }
  return s;
}

std::optional<long long> Reader::integer(const Node* node, std::string_view what, long long min,
                                         long long max) {
  if (node == nullptr) return std::nullopt;
  if (!node->is_scalar() || node->quoted) {
    error(node, "wrong-type",
          fmt::format("{} must be a whole number, not {}", what,
                      node->is_scalar() ? "a quoted string" : node->describe()));
    return std::nullopt;
  }
  long long value = 0;
  const auto& s = node->value;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) {
    error(node, "wrong-type", fmt::format("{} must be a whole number, not '{}'", what, s));
    return std::nullopt;
  }
  if (value < min || value > max) {
    error(node, "bad-value", fmt::format("{} must be between {} and {}, not {}", what, min, max, value));
    return std::nullopt;
  }
  return value;
}

std::optional<double> Reader::number(const Node* node, std::string_view what) {
  if (node == nullptr) return std::nullopt;
  if (!node->is_scalar() || node->quoted) {
    error(node, "wrong-type",
          fmt::format("{} must be a number, not {}", what,
                      node->is_scalar() ? "a quoted string" : node->describe()));
    return std::nullopt;
  }
  double value = 0;
  const auto& s = node->value;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) {
    error(node, "wrong-type", fmt::format("{} must be a number, not '{}'", what, s));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Reader::boolean(const Node* node, std::string_view what) {
  if (node == nullptr) return std::nullopt;
  if (node->is_scalar() && !node->quoted) {
    if (node->value == "true" || node->value == "True" || node->value == "TRUE") return true;
    if (node->value == "false" || node->value == "False" || node->value == "FALSE") return false;
  }
  error(node, "wrong-type",
        fmt::format("{} must be true or false, not {}", what,
                    node->is_scalar() ? "'" + node->value + "'" : std::string(node->describe())));
  return std::nullopt;
}

std::optional<TimeLimit> Reader::time_limit(const Node* node, std::string_view what) {
  auto s = text(node, what);
  if (!s) return std::nullopt;
  auto limit = parse_time_limit(*s);
  if (!limit) {
    error(node, "bad-time-limit",
          fmt::format("{} '{}' is not a time limit", what, *s),
          "write e.g. '20 working days', '8 working hours', '5 natural days' or '20个工作日'");
  }
  return limit;
}

std::vector<std::string> Reader::text_list(const Node* node, std::string_view what,
                                           bool identifiers) {
  std::vector<std::string> out;
  if (node == nullptr) return out;
  auto one = [&](const Node* n) {
    auto s = identifiers ? identifier(n, what) : text(n, what);
    if (s) out.push_back(std::move(*s));
  };
  if (node->is_sequence()) {
    for (const Node* n : node->children) one(n);
  } else if (node->is_scalar()) {
    one(node);
  } else {
    error(node, "wrong-type",
          fmt::format("{} must be a string or a list of strings, not {}", what, node->describe()));
  }
  return out;
}

void Reader::bad_choice(const Node* node, std::string_view what, std::string_view got,
                        const std::vector<std::string_view>& names) {
  const std::string near = closest(got, names);
  error(node, "bad-value",
        fmt::format("{} '{}' is not one of: {}", what, got, join_quoted(names)),
        near.empty() ? std::string() : fmt::format("did you mean '{}'?", near));
}

Expr Reader::expression(const Node* node, std::string_view what, const ExprScope& scope) {
  if (node == nullptr) return {};
  std::string source;
  if (node->is_scalar()) {
    source = node->value;
  } else if (node->is_null()) {
    error(node, "bad-condition", fmt::format("{} is empty", what));
    return {};
  } else {
    error(node, "wrong-type", fmt::format("{} must be an expression string, not {}", what,
                                          node->describe()));
    return {};
  }
  std::vector<ExprError> errors;
  Expr expr = Expr::compile(source, scope, errors);
  for (const auto& e : errors) {
    // Map the byte offset inside the scalar back to the file. Exact for
    // one-line scalars; for quoted ones skip the opening quote.
    SourceLocation where = at(node);
    int line_offset = 0;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < e.offset && i < source.size(); ++i) {
      if (source[i] == '\n') {
        ++line_offset;
        line_start = i + 1;
      }
    }
    int column = 0;
    for (std::size_t i = line_start; i < e.offset && i < source.size(); ++i) {
      if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) ++column;
    }
    if (line_offset == 0) {
      where.column += column + (node->quoted ? 1 : 0);
    } else {
      where.line += line_offset;
      where.column = column + 1;
    }
    error_at(where, "bad-condition", fmt::format("{} '{}': {}", what, source, e.message));
  }
  return expr;
}

Reader::Fields::Fields(Reader& reader, const Node* node, std::string_view what,
                       std::initializer_list<std::string_view> allowed,
                       std::initializer_list<std::string_view> also_allowed)
    : reader_(reader), node_(node), what_(what) {
  if (node == nullptr) return;
  if (!node->is_mapping()) {
    reader.error(node, "wrong-type", fmt::format("{} must be a mapping, not {}", what, node->describe()));
    return;
  }
  ok_ = true;
  std::vector<std::string_view> known(allowed);
  known.insert(known.end(), also_allowed.begin(), also_allowed.end());
  for (std::size_t i = 0; i + 1 < node->children.size(); i += 2) {
    const Node* key = node->children[i];
    if (!key->is_scalar()) continue;  // reported by the parser
    if (std::find(known.begin(), known.end(), key->value) != known.end()) continue;
    if (key->value == "<<" && !key->quoted) {
      reader.error(key, "unknown-key", fmt::format("YAML merge keys ('<<') are not supported in {}", what),
                   "write the keys out, or use an anchor for a whole value: 'key: *name'");
      continue;
    }
    const std::string near = closest(key->value, known);
    reader.error(key, "unknown-key", fmt::format("unknown key '{}' in {}", key->value, what),
                 near.empty() ? fmt::format("known keys: {}", join_quoted(known))
                              : fmt::format("did you mean '{}'?", near));
  }
}

const Node* Reader::Fields::get(std::string_view key, bool required) {
  if (!ok_) return nullptr;
  const Node* value = node_->get(key);
  if (value == nullptr && required) {
    reader_.error(node_, "missing-field", fmt::format("{} has no '{}'", what_, key));
  }
  return value;
}

}  // namespace onestop::yaml
