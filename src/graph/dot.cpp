// Graphviz rendering of a flow: each node kind has its own shape, limits and
// guards become labels, declared returns are dashed edges back.

#include <onestop/definitions.hpp>

#include <fmt/format.h>

namespace onestop {

namespace {

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

struct Style {
  std::string_view shape;
  std::string_view fill;
  std::string_view extra;
};

Style style_of(NodeKind kind) {
  switch (kind) {
    case NodeKind::start: return {"circle", "#d9f2d9", ",width=0.35,fixedsize=true"};
    case NodeKind::end: return {"doublecircle", "#f2d9d9", ""};
    case NodeKind::task: return {"box", "#ffffff", ",style=\"rounded,filled\""};
    case NodeKind::countersign: return {"box", "#fff5cc", ",style=\"rounded,filled,bold\",peripheries=2"};
    case NodeKind::parallel: return {"diamond", "#dde8ff", ""};
    case NodeKind::join: return {"diamond", "#dde8ff", ""};
    case NodeKind::exclusive: return {"diamond", "#ffe8cc", ""};
    case NodeKind::inclusive: return {"diamond", "#e8ddff", ""};
    case NodeKind::subflow: return {"box3d", "#e6f7ff", ""};
    case NodeKind::automatic: return {"component", "#eeeeee", ""};
    case NodeKind::timer: return {"octagon", "#f5f5f5", ""};
  }
  return {"box", "#ffffff", ""};
}

std::string label_of(const Node& n, const Catalog& catalog, const DotOptions& options) {
  std::string label;
  switch (n.kind) {
    case NodeKind::parallel: label = "+"; break;
    case NodeKind::join: label = "+ join"; break;
    case NodeKind::exclusive: label = "×"; break;
    case NodeKind::inclusive: label = "○"; break;
    case NodeKind::start: label = ""; break;
    default: label = n.name.empty() ? n.id : n.name;
  }
  if (n.kind == NodeKind::subflow) {
    const Item* item = n.item.empty() ? nullptr : catalog.find_item(n.item);
    if (item != nullptr && n.name.empty()) label = item->name;
    label += fmt::format("\n[{}]", n.item.empty() ? n.flow : n.item);
  }
  if (n.kind == NodeKind::countersign) {
    label += n.complete_when == CompletionRule::quota
                 ? (n.quota > 0 ? fmt::format("\ncountersign: {} of signers", n.quota)
                                : fmt::format("\ncountersign: {:g}%", n.quota_share * 100))
                 : fmt::format("\ncountersign: {}", to_string(n.complete_when));
  }
  if (n.kind == NodeKind::automatic) label += fmt::format("\nhandler: {}", n.handler);
  if (n.kind == NodeKind::timer && n.wait) label = fmt::format("{}\nwait {}", label, n.wait->to_string());
  if (n.kind == NodeKind::end) {
    label = n.name.empty() ? std::string(to_string(n.outcome)) : fmt::format("{}\n({})", n.name, to_string(n.outcome));
  }
  std::string who;
  for (const auto& d : n.assignees.departments) who += (who.empty() ? "" : ", ") + d;
  for (const auto& r : n.assignees.roles) who += (who.empty() ? "" : ", ") + r;
  for (const auto& u : n.assignees.users) who += (who.empty() ? "" : ", ") + u;
  if (!who.empty()) label += "\n" + who;
  if (options.show_limits && n.time_limit) {
    label += "\nlimit " + n.time_limit->to_string();
    if (n.on_timeout == TimeoutAction::deem_consent) label += ", silence = consent";
    if (n.on_timeout == TimeoutAction::escalate) label += ", escalate";
  }
  return label;
}

}  // namespace

std::string render_dot(const Flow& flow, const Catalog& catalog, const DotOptions& options) {
  std::string out;
  out += fmt::format("digraph \"{}\" {{\n", escape(flow.id));
  std::string title = flow.name.empty() ? flow.id : flow.name;
  title += fmt::format(" (v{})", flow.version);
  if (flow.time_limit.promised) title += ", promised " + flow.time_limit.promised->to_string();
  if (flow.time_limit.statutory) title += ", statutory " + flow.time_limit.statutory->to_string();
  out += fmt::format("  graph [rankdir={}, label=\"{}\", labelloc=t, fontname=\"Helvetica\", fontsize=14];\n",
                     options.rankdir, escape(title));
  out += "  node [fontname=\"Helvetica\", fontsize=10, style=filled];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  for (const auto& n : flow.nodes) {
    const Style s = style_of(n.kind);
    out += fmt::format("  \"{}\" [shape={}, fillcolor=\"{}\", label=\"{}\"{}];\n", escape(n.id), s.shape, s.fill,
                       escape(label_of(n, catalog, options)), s.extra);
  }
  for (const auto& e : flow.edges) {
    std::string attrs;
    if (options.show_guards && e.guard.valid()) attrs += fmt::format("label=\"{}\"", escape(e.guard.text()));
    if (e.is_default) attrs += std::string(attrs.empty() ? "" : ", ") + "label=\"otherwise\", style=bold";
    if (e.loop) attrs += std::string(attrs.empty() ? "" : ", ") + "style=dotted, constraint=false";
    out += fmt::format("  \"{}\" -> \"{}\"{};\n", escape(e.from), escape(e.to), attrs.empty() ? "" : " [" + attrs + "]");
  }
  if (options.show_returns) {
    for (const auto& r : flow.returns) {
      for (const auto& t : r.to) {
        out += fmt::format("  \"{}\" -> \"{}\" [style=dashed, color=\"#b03030\", fontcolor=\"#b03030\", "
                           "label=\"return\", constraint=false];\n",
                           escape(r.from), escape(t));
      }
    }
  }
  out += "}\n";
  return out;
}

}  // namespace onestop
