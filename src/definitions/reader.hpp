#pragma once

// Typed, diagnosing access to the YAML tree: every accessor reports what is
// wrong (wrong type, missing, unknown key with a hint, bad value) and goes
// on, so one pass finds every problem.

#include "definitions/yaml_dom.hpp"

#include <onestop/error.hpp>
#include <onestop/model.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onestop::yaml {

// Insertions, deletions and substitutions from `a` to `b` (Levenshtein).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The closest candidate to `word` within a small edit distance, or "".
std::string closest(std::string_view word, const std::vector<std::string_view>& candidates);

// Letters, digits, '_', '-', '.', starting with a letter or digit.
bool is_identifier(std::string_view s) noexcept;

class Reader {
 public:
  Reader(std::string file, std::vector<Diagnostic>& diagnostics)
      : file_(std::move(file)), diagnostics_(diagnostics) {}

  const std::string& file() const noexcept { return file_; }
  SourceLocation at(const Node* node) const {
    return node ? SourceLocation{file_, node->line, node->column} : SourceLocation{file_, 0, 0};
  }
  void report(Severity severity, const Node* node, std::string code, std::string message,
              std::string hint = {});
  void error(const Node* node, std::string code, std::string message, std::string hint = {}) {
    report(Severity::error, node, std::move(code), std::move(message), std::move(hint));
  }
  void error_at(SourceLocation where, std::string code, std::string message);

  // Scalars.
  std::optional<std::string> text(const Node* node, std::string_view what);
  std::optional<std::string> identifier(const Node* node, std::string_view what);
  std::optional<long long> integer(const Node* node, std::string_view what, long long min,
                                   long long max);
  std::optional<double> number(const Node* node, std::string_view what);
  std::optional<bool> boolean(const Node* node, std::string_view what);
  std::optional<TimeLimit> time_limit(const Node* node, std::string_view what);
  // A string, or a list of strings; each an identifier when `identifiers`.
  std::vector<std::string> text_list(const Node* node, std::string_view what, bool identifiers);

  // One of the names in `choices`; reports bad-value listing them.
  template <typename E>
  std::optional<E> choice(const Node* node, std::string_view what,
                          std::initializer_list<std::pair<std::string_view, E>> choices) {
    auto s = text(node, what);
    if (!s) return std::nullopt;
    std::vector<std::string_view> names;
    for (const auto& [name, value] : choices) {
      if (*s == name) return value;
      names.push_back(name);
    }
    bad_choice(node, what, *s, names);
    return std::nullopt;
  }

  // A compiled condition; errors point at the offending character.
  Expr expression(const Node* node, std::string_view what, const ExprScope& scope);

  // The pieces of a mapping with a fixed set of keys; reports the unknown
  // ones (with a "did you mean" hint) on construction.
  class Fields {
   public:
    Fields(Reader& reader, const Node* node, std::string_view what,
           std::initializer_list<std::string_view> allowed,
           std::initializer_list<std::string_view> also_allowed = {});
    bool ok() const noexcept { return ok_; }
    const Node* node() const noexcept { return node_; }
    // The value of `key`, nullptr when absent; reports missing-field when required.
    const Node* get(std::string_view key, bool required = false);

   private:
    Reader& reader_;
    const Node* node_;
    std::string what_;
    bool ok_ = false;
  };

 private:
  void bad_choice(const Node* node, std::string_view what, std::string_view got,
                  const std::vector<std::string_view>& names);

  std::string file_;
  std::vector<Diagnostic>& diagnostics_;
};

}  // namespace onestop::yaml
