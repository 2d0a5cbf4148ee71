#include "definitions/yaml_dom.hpp"

#include "common/utf8.hpp"

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace onestop::yaml {

const Node* Node::get(std::string_view key) const noexcept {
  if (kind != Kind::mapping) return nullptr;
  for (std::size_t i = 0; i + 1 < children.size(); i += 2) {
    if (children[i]->is_scalar() && children[i]->value == key) return children[i + 1];
  }
  return nullptr;
}

std::string_view Node::describe() const noexcept {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::sequence: return "a list";
    case Kind::mapping: return "a mapping";
    case Kind::scalar: return "a scalar";
  }
  return "a value";
}

namespace {

// Thrown from the event handler to stop parsing when a limit is hit.
struct LimitExceeded {
  Diagnostic diagnostic;
};

class TreeBuilder final : public YAML::EventHandler {
 public:
  TreeBuilder(File& file, const LoadOptions& options, std::vector<Diagnostic>& diagnostics)
      : file_(file), options_(options), diagnostics_(diagnostics) {}

  const Node* root() const noexcept { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {
    root_ = nullptr;
    stack_.clear();
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Node& n = make(mark, Node::Kind::null);
    // An empty value (`key:` and nothing after it) is marked where the next
    // token starts, often the next line: it is placed after its key's colon.
    if (!stack_.empty()) {
      const Node& parent = *stack_.back().node;
      if (parent.is_mapping() && parent.children.size() % 2 == 1) {
        const Node& key = *parent.children.back();
        if (n.line > key.line) {
          n.line = key.line;
          n.column = key.column + static_cast<int>(key.value.size()) + (key.quoted ? 3 : 1);
        }
      }
    }
    finish_leaf(n, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      throw LimitExceeded{diag(mark, "yaml-syntax", "alias to an unknown anchor")};
    }
    count(mark, it->second->weight);
    attach(it->second);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    Node& n = make(mark, Node::Kind::scalar);
    n.value = value;
    // yaml-cpp tags plain scalars "?" and quoted or block scalars "!".
    n.quoted = tag != "?";
    finish_leaf(n, anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(make(mark, Node::Kind::sequence), anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(make(mark, Node::Kind::mapping), anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    Node* node;
    YAML::anchor_t anchor;
    std::unordered_set<std::string_view> keys;  // mappings: keys seen so far
  };

  Diagnostic diag(const YAML::Mark& mark, std::string code, std::string message) const {
    return Diagnostic{Severity::error, {file_.name, mark.line + 1, mark.column + 1},
                      std::move(code), std::move(message), {}};
  }

  void count(const YAML::Mark& mark, std::size_t n) {
    total_ += n;
    if (total_ > options_.max_nodes) {
      throw LimitExceeded{diag(mark, "too-many-nodes",
                               fmt::format("more than {} YAML nodes (aliases expanded); the file "
                                           "is refused to keep loading bounded",
                                           options_.max_nodes))};
    }
  }

  Node& make(const YAML::Mark& mark, Node::Kind kind) {
    count(mark, 1);
    Node& n = file_.arena.emplace_back();
    n.kind = kind;
    n.line = mark.line + 1;
    n.column = mark.column + 1;
    return n;
  }

  void remember(YAML::anchor_t anchor, const Node& n) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = &n;
  }

  void finish_leaf(Node& n, YAML::anchor_t anchor) {
    remember(anchor, n);
    attach(&n);
  }

  void open(Node& n, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= options_.max_depth) {
      throw LimitExceeded{Diagnostic{Severity::error, {file_.name, n.line, n.column}, "too-deep",
                                     fmt::format("nesting deeper than {} levels", options_.max_depth),
                                     {}}};
    }
    attach(&n);
    stack_.push_back(Frame{&n, anchor, {}});
  }

  void close() {
    Frame& f = stack_.back();
    std::size_t weight = 1;
    for (const Node* c : f.node->children) weight += c->weight;
    f.node->weight = weight;
    remember(f.anchor, *f.node);
    stack_.pop_back();
  }

  void attach(const Node* n) {
    if (stack_.empty()) {
      root_ = n;
      return;
    }
    Frame& f = stack_.back();
    if (f.node->is_mapping() && f.node->children.size() % 2 == 0) {
      // n is a key.
      if (!n->is_scalar()) {
        diagnostics_.push_back(Diagnostic{Severity::error, {file_.name, n->line, n->column},
                                          "wrong-type", "mapping keys must be plain strings", {}});
      } else if (!f.keys.insert(n->value).second) {
        diagnostics_.push_back(Diagnostic{Severity::error,
                                          {file_.name, n->line, n->column},
                                          "duplicate-key",
                                          fmt::format("duplicate key '{}'", n->value),
                                          {}});
      }
    }
    f.node->children.push_back(n);
  }

  File& file_;
  const LoadOptions& options_;
  std::vector<Diagnostic>& diagnostics_;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, const Node*> anchors_;
  const Node* root_ = nullptr;
  std::size_t total_ = 0;
};


SourceLocation location_of(std::string_view text, std::size_t offset, const std::string& file) {
  int line = 1;
  int column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;
    }
  }
  return {file, line, column};
}

// Tabs are not allowed in YAML indentation; yaml-cpp's own messages for them
// are confusing, so say it plainly, once per file.
bool report_tab_indentation(std::string_view text, const std::string& file,
                            std::vector<Diagnostic>& diagnostics) {
  std::size_t line_start = 0;
  int line = 1;
  while (line_start <= text.size()) {
    std::size_t i = line_start;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
      if (text[i] == '\t') {
        const std::size_t eol = text.find('\n', i);
        const std::string_view rest =
            text.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
        // A tab before a comment or on a blank line is harmless.
        if (rest.find_first_not_of(" \t\r") != std::string_view::npos &&
            rest[rest.find_first_not_of(" \t\r")] != '#') {
          diagnostics.push_back(Diagnostic{
              Severity::error,
              {file, line, static_cast<int>(i - line_start) + 1},
              "yaml-syntax",
              "tab character used for indentation; YAML indents with spaces only",
              {}});
          return true;
        }
        break;
      }
      ++i;
    }
    const std::size_t eol = text.find('\n', line_start);
    if (eol == std::string_view::npos) break;
    line_start = eol + 1;
    ++line;
  }
  return false;
}

}  // namespace

void parse(std::string_view text, const LoadOptions& options, File& file,
           std::vector<Diagnostic>& diagnostics) {
  if (text.size() > options.max_file_bytes) {
    diagnostics.push_back(Diagnostic{Severity::error,
                                     {file.name, 0, 0},
                                     "file-too-large",
                                     fmt::format("file is {} bytes; the limit is {} bytes",
                                                 text.size(), options.max_file_bytes),
                                     "raise LoadOptions::max_file_bytes if this is intended"});
    return;
  }
  if (std::size_t bad = invalid_utf8_at(text); bad != std::string_view::npos) {
    diagnostics.push_back(Diagnostic{Severity::error, location_of(text, bad, file.name),
                                     "bad-encoding",
                                     fmt::format("invalid UTF-8 byte 0x{:02X}; definition files "
                                                 "must be UTF-8",
                                                 static_cast<unsigned char>(text[bad])),
                                     {}});
    return;
  }
  if (report_tab_indentation(text, file.name, diagnostics)) return;

  std::istringstream in{std::string(text)};
  TreeBuilder builder(file, options, diagnostics);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
      if (builder.root() != nullptr) file.documents.push_back(builder.root());
    }
  } catch (const LimitExceeded& e) {
    diagnostics.push_back(e.diagnostic);
  } catch (const YAML::DeepRecursion& e) {
    diagnostics.push_back(Diagnostic{Severity::error,
                                     {file.name, e.mark.line + 1, e.mark.column + 1},
                                     "too-deep",
                                     "nesting too deep for the YAML parser",
                                     {}});
  } catch (const YAML::Exception& e) {
    diagnostics.push_back(Diagnostic{Severity::error,
                                     {file.name, e.mark.line + 1, e.mark.column + 1},
                                     "yaml-syntax",
                                     e.msg,
                                     {}});
  }
}

}  // namespace onestop::yaml
