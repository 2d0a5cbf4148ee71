#pragma once

// Generates large, valid definition sets as YAML text: a flow of about
// `nodes` nodes made of serial steps and parallel blocks, plus `items`
// items with materials. Used by the definitions benchmark and the
// bad-input tests.

#include <string>

#include <fmt/format.h>

namespace onestop::bench {

struct Generated {
  std::string organisation;
  std::string items;
  std::string flow;
};

inline Generated generate_definitions(int nodes, int items, int departments = 50) {
  Generated g;
  g.organisation = "departments:\n";
  for (int d = 0; d < departments; ++d) {
    g.organisation += fmt::format("  - {{ id: dept{}, name: Department {} }}\n", d, d);
  }
  g.organisation += "roles:\n  - { id: reviewer, name: Reviewer }\n";

  g.items = "items:\n";
  for (int i = 0; i < items; ++i) {
    g.items += fmt::format(
        "  - code: XK-{:05}-001\n"
        "    name: Generated item {}\n"
        "    type: administrative_licence\n"
        "    department: dept{}\n"
        "    applicants: [legal_person]\n"
        "    time_limit: {{ statutory: 20 working days, promised: 10 working days }}\n"
        "    flow: small_review\n"
        "    materials:\n"
        "      - {{ id: form, name: Application form, form: electronic }}\n"
        "      - {{ id: licence, name: Business licence, source: certificate_library, licence_type: business_licence }}\n"
        "      - {{ id: plan, name: Site plan, file_types: [pdf, dwg], max_size: 20 MB }}\n"
        "      - {{ id: eia, name: EIA report, required_if: 'form.investment >= 50000000 and form.industry in [\"chemical\", \"steel\"]' }}\n"
        "      - {{ id: power, name: Power of attorney, required_if: 'applicant.kind == \"legal_person\" and not has(form)' }}\n",
        i, i, i % departments);
  }
  g.items +=
      "flows:\n"
      "  - id: small_review\n"
      "    time_limit: 10 working days\n"
      "    nodes:\n"
      "      start: { kind: start }\n"
      "      review: { kind: task, assignees: { role: reviewer }, time_limit: 5 working days }\n"
      "      approved: { kind: end, outcome: approved }\n"
      "      rejected: { kind: end, outcome: rejected }\n"
      "    edges:\n"
      "      - start -> review\n"
      "      - review -> approved: { when: approved }\n"
      "      - review -> rejected: { otherwise: true }\n";

  // Blocks of: task -> parallel split -> 3 branch tasks -> join (6 nodes).
  g.flow = "flow:\n  id: big\n  time_limit: 999999 working days\n  nodes:\n    start: { kind: start }\n";
  std::string edges = "  edges:\n";
  std::string prev = "start";
  int count = 2;  // start and end
  int b = 0;
  for (; count + 6 <= nodes; ++b, count += 6) {
    g.flow += fmt::format(
        "    t{0}: {{ kind: task, assignees: {{ department: dept{1} }}, time_limit: 1 working day }}\n"
        "    s{0}: {{ kind: parallel }}\n"
        "    a{0}: {{ kind: task, assignees: {{ role: reviewer }} }}\n"
        "    b{0}: {{ kind: task, assignees: {{ role: reviewer }} }}\n"
        "    c{0}: {{ kind: task, assignees: {{ role: reviewer }} }}\n"
        "    j{0}: {{ kind: join }}\n",
        b, b % departments);
    edges += fmt::format("    - {1} -> t{0}\n    - t{0} -> s{0}\n    - s{0} -> a{0}, b{0}, c{0}\n"
                         "    - a{0}, b{0}, c{0} -> j{0}\n",
                         b, prev);
    prev = fmt::format("j{}", b);
  }
  for (; count < nodes; ++count, ++b) {
    g.flow += fmt::format("    t{0}: {{ kind: task, assignees: {{ department: dept{1} }} }}\n", b, b % departments);
    edges += fmt::format("    - {} -> t{}\n", prev, b);
    prev = fmt::format("t{}", b);
  }
  g.flow += "    done: { kind: end, outcome: approved }\n";
  edges += fmt::format("    - {} -> done\n", prev);
  g.flow += edges;
  return g;
}

}  // namespace onestop::bench
