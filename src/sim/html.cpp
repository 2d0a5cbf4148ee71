// The HTML report: one self-contained page (no scripts, no network), charts
// as inline SVG drawn here. Flow graphs use a simple layered layout: a
// node's column is its longest distance from the start along forward edges.

#include <onestop/simulation.hpp>
#include <onestop/supervision.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace onestop {

namespace {

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string shorten(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  // Cut at a UTF-8 boundary.
  std::size_t cut = n - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

// Green (no wait) to red (the longest wait).
std::string heat(double share) {
  share = std::clamp(share, 0.0, 1.0);
  const int r = static_cast<int>(std::lround(90 + 165 * share));
  const int g = static_cast<int>(std::lround(200 - 150 * share));
  const int b = static_cast<int>(std::lround(110 - 60 * share));
  return fmt::format("#{:02x}{:02x}{:02x}", r, g, b);
}

std::string flow_svg(const Flow& flow, const SimulationReport& r, const Catalog& catalog) {
  // Mean wait per node: tasks from the step figures, subflows from their item's steps.
  std::map<std::string, double> wait;
  std::map<std::string, double> item_wait;
  for (const auto& s : r.steps) {
    if (s.flow == flow.id) wait[s.node] = s.wait_hours.mean;
    if (!s.item.empty()) item_wait[s.item] += s.wait_hours.mean;
  }
  for (const auto& n : flow.nodes) {
    if (n.kind == NodeKind::subflow && !n.item.empty()) wait[n.id] = item_wait[n.item];
  }
  double top = 0;
  for (const auto& [k, v] : wait) top = std::max(top, v);
  // Layers by longest path over forward (non-loop) edges.
  std::map<std::string, int> layer;
  for (const auto& n : flow.nodes) layer[n.id] = 0;
  for (std::size_t pass = 0; pass < flow.nodes.size(); ++pass) {
    bool changed = false;
    for (const auto& e : flow.edges) {
      if (e.loop || !layer.count(e.from) || !layer.count(e.to)) continue;
      if (layer[e.to] < layer[e.from] + 1 && layer[e.from] + 1 < static_cast<int>(flow.nodes.size())) {
        layer[e.to] = layer[e.from] + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  std::map<int, int> rows;
  std::map<std::string, std::pair<double, double>> pos;
  const double w = 170, h = 46, dx = 210, dy = 64;
  int max_rows = 0, max_layer = 0;
  for (const auto& n : flow.nodes) {
    const int l = layer[n.id];
    const int row = rows[l]++;
    max_rows = std::max(max_rows, row + 1);
    max_layer = std::max(max_layer, l);
  }
  std::map<int, int> placed;
  for (const auto& n : flow.nodes) {
    const int l = layer[n.id];
    const int row = placed[l]++;
    const double offset = (max_rows - rows[l]) * dy / 2;
    pos[n.id] = {20 + l * dx, 20 + offset + row * dy};
  }
  const double width = 40 + max_layer * dx + w;
  const double height = 40 + max_rows * dy;
  std::ostringstream o;
  o << fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="{:.0f}" viewBox="0 0 {:.0f} {:.0f}" font-family="sans-serif" font-size="11">)",
                   width, height, width, height);
  // The arrow head is defined once in the page (report_html): every graph refers to it.
  for (const auto& e : flow.edges) {
    if (!pos.count(e.from) || !pos.count(e.to)) continue;
    const auto [x1, y1] = pos[e.from];
    const auto [x2, y2] = pos[e.to];
    const double sx = x1 + w, sy = y1 + h / 2, tx = x2, ty = y2 + h / 2;
    if (e.loop || tx <= sx) {
      o << fmt::format(R"(<path d="M{:.0f},{:.0f} C{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}" fill="none" stroke="#c33" stroke-dasharray="4 3" marker-end='url(#arrow)'/>)",
                       x1 + w / 2, y1 + h, x1 + w / 2, y1 + h + 30, x2 + w / 2, y2 + h + 30, x2 + w / 2, y2 + h);
    } else {
      const double mx = (sx + tx) / 2;
      o << fmt::format(R"(<path d="M{:.0f},{:.0f} C{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}" fill="none" stroke="#555" marker-end='url(#arrow)'/>)",
                       sx, sy, mx, sy, mx, ty, tx, ty);
    }
  }
  for (const auto& ret : flow.returns) {
    for (const auto& to : ret.to) {
      if (!pos.count(ret.from) || !pos.count(to)) continue;
      const auto [x1, y1] = pos[ret.from];
      const auto [x2, y2] = pos[to];
      o << fmt::format(R"(<path d="M{:.0f},{:.0f} C{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}" fill="none" stroke="#c33" stroke-dasharray="4 3" marker-end='url(#arrow)'><title>return</title></path>)",
                       x1 + w / 2, y1, x1 + w / 2, y1 - 24, x2 + w / 2, y2 - 24, x2 + w / 2, y2);
    }
  }
  for (const auto& n : flow.nodes) {
    const auto [x, y] = pos[n.id];
    std::string fill = "#eeeeee";
    std::string note;
    auto it = wait.find(n.id);
    if (it != wait.end()) {
      fill = heat(top > 0 ? it->second / top : 0);
      note = fmt::format("wait {:.1f} h", it->second);
    }
    const bool round_node = n.kind == NodeKind::start || n.kind == NodeKind::end;
    const bool gateway = n.kind == NodeKind::parallel || n.kind == NodeKind::join || n.kind == NodeKind::exclusive ||
                         n.kind == NodeKind::inclusive;
    std::string label = n.name.empty() ? n.id : n.name;
    if (n.kind == NodeKind::subflow && !n.item.empty()) {
      if (const Item* item = catalog.find_item(n.item)) label = n.item + " " + item->name;
    }
    o << "<g><title>" << esc(n.id + " (" + std::string(to_string(n.kind)) + "): " + label + (note.empty() ? "" : "; mean " + note))
      << "</title>";
    if (round_node) {
      o << fmt::format(R"(<ellipse cx="{:.0f}" cy="{:.0f}" rx="36" ry="18" fill="{}" stroke="#333"/>)", x + w / 2, y + h / 2,
                       n.kind == NodeKind::end ? "#dde6f7" : "#ffffff");
      o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">{}</text>)", x + w / 2, y + h / 2 + 4, esc(shorten(n.id, 14)));
    } else if (gateway) {
      o << fmt::format(R"(<polygon points="{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}" fill="#fff8dc" stroke="#333"/>)",
                       x + w / 2, y, x + w / 2 + 24, y + h / 2, x + w / 2, y + h, x + w / 2 - 24, y + h / 2);
      o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle" font-size="10">{}</text>)", x + w / 2, y + h + 11,
                       esc(shorten(n.id, 24)));
    } else {
      o << fmt::format(R"(<rect x="{:.0f}" y="{:.0f}" width="{:.0f}" height="{:.0f}" rx="8" fill="{}" stroke="#333" stroke-width="{}"/>)",
                       x, y, w, h, fill, n.kind == NodeKind::countersign ? 2.5 : 1);
      o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">{}</text>)", x + w / 2, y + 17, esc(shorten(label, 28)));
      o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle" fill="#222" font-size="10">{}</text>)", x + w / 2, y + 33,
                       esc(note.empty() ? std::string(to_string(n.kind)) : note));
    }
    o << "</g>";
  }
  o << "</svg>";
  return o.str();
}

std::string bars_svg(const std::vector<std::pair<std::string, double>>& bars, double max_value, const std::string& unit) {
  const double row = 24, label_w = 230, bar_w = 360;
  const double height = 10 + row * static_cast<double>(bars.size());
  std::ostringstream o;
  o << fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="{:.0f}" font-family="sans-serif" font-size="11">)",
                   label_w + bar_w + 90, height);
  double y = 5;
  for (const auto& [label, v] : bars) {
    const double len = max_value > 0 ? bar_w * std::min(1.0, v / max_value) : 0;
    o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="end">{}</text>)", label_w - 6, y + 15, esc(shorten(label, 36)));
    o << fmt::format(R"(<rect x="{:.0f}" y="{:.0f}" width="{:.1f}" height="16" fill="{}"/>)", label_w, y + 3, len,
                     unit == "%" ? heat(v / 100) : "#4a7ebb");
    o << fmt::format(R"(<text x="{:.1f}" y="{:.0f}">{:.1f}{}</text>)", label_w + len + 5, y + 15, v, unit == "%" ? " %" : " " + unit);
    y += row;
  }
  o << "</svg>";
  return o.str();
}

std::string histogram_svg(const std::vector<std::size_t>& h) {
  const double bar = 14, height = 160, base = 180;
  std::size_t top = 1;
  for (auto x : h) top = std::max(top, x);
  const double width = 60 + bar * static_cast<double>(std::max<std::size_t>(h.size(), 10));
  std::ostringstream o;
  o << fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="210" font-family="sans-serif" font-size="10">)", width);
  o << fmt::format(R"(<line x1="40" y1="{0}" x2="{1:.0f}" y2="{0}" stroke="#333"/>)", base, width - 10);
  o << fmt::format(R"(<text x="36" y="{:.0f}" text-anchor="end">{}</text><text x="36" y="{:.0f}" text-anchor="end">0</text>)",
                   base - height + 4, top, base);
  for (std::size_t i = 0; i < h.size(); ++i) {
    const double v = height * static_cast<double>(h[i]) / static_cast<double>(top);
    const double x = 42 + bar * static_cast<double>(i);
    o << fmt::format(R"(<rect x="{:.0f}" y="{:.1f}" width="{:.0f}" height="{:.1f}" fill="#4a7ebb"><title>{}{} working days: {} cases</title></rect>)",
                     x, base - v, bar - 2, v, i, i + 1 == 61 ? "+" : "", h[i]);
    if (i % 5 == 0) o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">{}</text>)", x + bar / 2, base + 13, i);
  }
  o << fmt::format(R"(<text x="{:.0f}" y="205" text-anchor="middle">working days from submission to end</text>)", width / 2);
  o << "</svg>";
  return o.str();
}

std::string timeline_svg(const std::vector<TimelinePoint>& t) {
  const double width = 720, height = 200, left = 50, base = 210;
  std::size_t top = 1;
  for (const auto& p : t) top = std::max({top, p.open, p.overdue});
  std::ostringstream o;
  o << fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="250" font-family="sans-serif" font-size="10">)", width + 80);
  o << fmt::format(R"(<line x1="{0:.0f}" y1="{1:.0f}" x2="{2:.0f}" y2="{1:.0f}" stroke="#333"/><line x1="{0:.0f}" y1="10" x2="{0:.0f}" y2="{1:.0f}" stroke="#333"/>)",
                   left, base, left + width);
  o << fmt::format(R"(<text x="{:.0f}" y="14" text-anchor="end">{}</text>)", left - 4, top);
  auto line = [&](auto get, const char* colour) {
    o << R"(<polyline fill="none" stroke=")" << colour << R"(" stroke-width="1.5" points=")";
    for (std::size_t i = 0; i < t.size(); ++i) {
      const double x = left + (t.size() > 1 ? width * static_cast<double>(i) / static_cast<double>(t.size() - 1) : 0);
      const double y = base - height * static_cast<double>(get(t[i])) / static_cast<double>(top);
      o << fmt::format("{:.1f},{:.1f} ", x, y);
    }
    o << R"("/>)";
  };
  line([](const TimelinePoint& p) { return p.open; }, "#4a7ebb");
  line([](const TimelinePoint& p) { return p.overdue; }, "#d62728");
  for (std::size_t i = 0; i < t.size(); i += std::max<std::size_t>(1, t.size() / 6)) {
    const double x = left + (t.size() > 1 ? width * static_cast<double>(i) / static_cast<double>(t.size() - 1) : 0);
    o << fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">{}</text>)", x, base + 14, t[i].date);
  }
  o << fmt::format(R"(<rect x="{0:.0f}" y="232" width="10" height="10" fill="#4a7ebb"/><text x="{1:.0f}" y="241">open cases</text><rect x="{2:.0f}" y="232" width="10" height="10" fill="#d62728"/><text x="{3:.0f}" y="241">open and past the promised limit</text>)",
                   left, left + 14, left + 110, left + 124);
  o << "</svg>";
  return o.str();
}

void kpi_rows(std::ostringstream& o, const SimulationReport& r, const SimulationReport* other) {
  auto row = [&](const std::string& k, const std::string& a, const std::string& b) {
    o << "<tr><th>" << esc(k) << "</th><td>" << esc(a) << "</td>";
    if (other) o << "<td>" << esc(b) << "</td>";
    o << "</tr>\n";
  };
  const SimulationReport& b = other ? *other : r;
  auto n = [](std::size_t x) { return std::to_string(x); };
  row("applications", n(r.arrived), n(b.arrived));
  row("refused at pre-review", n(r.refused), n(b.refused));
  row("cases finished", n(r.finished), n(b.finished));
  row("cases open at the end", n(r.open), n(b.open));
  row("throughput (cases per working day)", fmt::format("{:.2f}", r.throughput_per_working_day), fmt::format("{:.2f}", b.throughput_per_working_day));
  auto on_time = [](const SimulationReport& x) { return x.rated > 0 ? percent_text(x.on_time_rate) : std::string("–"); };
  row("on-time rate", on_time(r), on_time(b));
  row("yellow / red warnings", fmt::format("{} / {}", r.yellow, r.red), fmt::format("{} / {}", b.yellow, b.red));
  row("escalations", n(r.escalations), n(b.escalations));
  row("deemed consents", n(r.deemed_consents), n(b.deemed_consents));
  row("correction requests / returns", fmt::format("{} / {}", r.corrections, r.returns), fmt::format("{} / {}", b.corrections, b.returns));
}

void run_sections(std::ostringstream& o, const SimulationReport& r, const Catalog& catalog, const std::string& title) {
  o << "<h2>" << esc(title) << "</h2>\n";
  o << "<h3>Cycle time (working days)</h3>\n<table><tr><th>target</th><th>cases</th><th>finished</th><th>open</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>on time</th></tr>\n";
  for (const auto& t : r.targets) {
    o << fmt::format("<tr><td>{}{} <small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{}</td></tr>\n",
                     t.part_of.empty() ? "" : "&nbsp;&nbsp;", esc(t.target), esc(t.name), t.arrived, t.finished, t.open,
                     t.cycle_days.mean, t.cycle_days.p50, t.cycle_days.p90, t.cycle_days.p99,
                     t.part_of.empty() && t.on_time + t.overdue > 0 ? percent_text(t.on_time_rate) : "–");
  }
  o << "</table>\n";
  for (const auto& t : r.targets) {
    if (!t.part_of.empty()) continue;
    o << "<h3>Cycle-time histogram: " << esc(t.target) << "</h3>\n" << histogram_svg(t.histogram) << "\n";
  }
  o << "<h3>Flow graphs, coloured by mean waiting time for staff</h3>\n<p class=note>Green: no wait; red: the longest mean wait. Subflows show the sum of their steps' mean waits.</p>\n";
  for (const auto& [id, version] : r.flows) {
    if (const Flow* f = catalog.find_flow(id, version)) {
      o << "<h4>" << esc(f->name.empty() ? f->id : f->name) << " <small>(" << esc(f->id) << ")</small></h4>\n<div class=graph>"
        << flow_svg(*f, r, catalog) << "</div>\n";
    }
  }
  o << "<h3>Staff utilisation per department</h3>\n";
  std::vector<std::pair<std::string, double>> bars;
  for (const auto& d : r.departments) bars.emplace_back(d.department + " (" + std::to_string(d.staff) + ")", 100 * d.utilisation);
  o << bars_svg(bars, 100, "%") << "\n";
  o << "<h3>Open and overdue cases over time</h3>\n" << timeline_svg(r.timeline) << "\n";
  o << "<h3>Bottlenecks</h3>\n<table><tr><th>#</th><th>step</th><th>waiting h per case</th><th>mean wait h</th><th>staff use</th></tr>\n";
  int rank = 0;
  for (const auto& b : r.bottlenecks) {
    o << fmt::format("<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.1f}</td><td>{:.1f} %</td></tr>\n", ++rank, esc(b.step), b.score,
                     b.mean_wait_hours, 100 * b.utilisation);
  }
  o << "</table>\n<h3>Steps</h3>\n<table><tr><th>flow/step</th><th>staffed by</th><th>tasks</th><th>served</th><th>timed out</th><th>mean wait h</th><th>p90 wait h</th><th>service h</th><th>corrections</th><th>returns</th><th>rejections</th></tr>\n";
  for (const auto& s : r.steps) {
    o << fmt::format("<tr><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.2f}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     esc(s.flow), esc(s.node), esc(s.staffed_by), s.tasks, s.served, s.timed_out, s.wait_hours.mean, s.wait_hours.p90,
                     s.mean_service_hours, s.corrections, s.returned, s.rejected);
  }
  o << "</table>\n";
  for (const auto& w : r.warnings) o << "<p class=warn>warning: " << esc(w) << "</p>\n";
}

}  // namespace

std::string report_html(const SimulationReport& r, const Catalog& catalog, const SimulationReport* other,
                        const Catalog* other_catalog) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>onestop simulation: " << esc(r.scenario) << "</title>\n"
    << "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
       "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
       ".graph{overflow-x:auto;border:1px solid #eee;padding:4px}.note{color:#666}.warn{color:#a00}small{color:#666}"
       ".runs{display:flex;gap:2em;flex-wrap:wrap}.runs>div{flex:1;min-width:600px}</style></head><body>\n";
  o << R"(<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs></svg>)"
    << "\n";
  o << "<h1>Simulation report: " << esc(r.scenario) << "</h1>\n";
  o << fmt::format("<p>Seed {}, calendar {}, from {} to {}{} ({:.2f} working days); the run ended {}.</p>\n", r.seed,
                   esc(r.calendar), esc(r.start), esc(r.horizon_end.substr(0, 10)),
                   r.measured_from.empty() ? std::string()
                                           : ", measured from " + esc(r.measured_from.substr(0, 16)) + " after the warmup",
                   r.horizon_working_days, esc(r.ended.substr(0, 16)));
  o << "<h2>Key figures</h2>\n<table><tr><th>KPI</th><th>" << (other ? "A: " + esc(r.scenario) : std::string("value")) << "</th>";
  if (other) o << "<th>B: " << esc(other->scenario) << "</th>";
  o << "</tr>\n";
  kpi_rows(o, r, other);
  o << "</table>\n";
  if (other) {
    o << "<div class=runs><div>";
    run_sections(o, r, catalog, "A: " + r.scenario);
    o << "</div><div>";
    run_sections(o, *other, other_catalog != nullptr ? *other_catalog : catalog, "B: " + other->scenario);
    o << "</div></div>\n";
  } else {
    run_sections(o, r, catalog, "Details");
  }
  o << "<p class=note>Generated by onestop simulate. Cycle times count working time from submission to the end of the case "
       "(correction time included); on-time rates use the promised limit with suspensions added back, as electronic supervision does.</p>\n";
  o << "</body></html>\n";
  return o.str();
}

}  // namespace onestop
