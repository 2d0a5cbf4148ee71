#pragma once

// A small YAML document tree with source positions, built from yaml-cpp's
// event parser. Own tree rather than YAML::Node because we need what
// YAML::Node hides: duplicate keys, whether a scalar was quoted, exact
// positions of every node, and a bound on alias expansion.

#include <onestop/definitions.hpp>
#include <onestop/error.hpp>

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace onestop::yaml {

struct Node {
  enum class Kind : unsigned char { null, scalar, sequence, mapping };
  Kind kind = Kind::null;
  bool quoted = false;  // scalar written in quotes: never a number or bool
  int line = 0;         // 1-based
  int column = 0;       // 1-based
  std::string value;    // scalar text
  // sequence: the elements; mapping: key, value, key, value, ...
  std::vector<const Node*> children;
  std::size_t weight = 1;  // nodes in this subtree, aliases expanded

  bool is_scalar() const noexcept { return kind == Kind::scalar; }
  bool is_sequence() const noexcept { return kind == Kind::sequence; }
  bool is_mapping() const noexcept { return kind == Kind::mapping; }
  bool is_null() const noexcept { return kind == Kind::null; }
  std::size_t size() const noexcept {
    return kind == Kind::mapping ? children.size() / 2 : children.size();
  }
  // Mapping lookup by key; nullptr when absent.
  const Node* get(std::string_view key) const noexcept;
  // "a string", "a list", "a mapping", "null", "a number" (for messages).
  std::string_view describe() const noexcept;
};

// The parsed documents of one file; owns every node.
struct File {
  std::string name;
  std::vector<const Node*> documents;
  std::deque<Node> arena;
};

// Parses `text` into `file`, appending problems (syntax, encoding, limits,
// duplicate keys) to `diagnostics`. Documents parsed before a syntax error
// are kept.
void parse(std::string_view text, const LoadOptions& options, File& file,
           std::vector<Diagnostic>& diagnostics);

}  // namespace onestop::yaml
