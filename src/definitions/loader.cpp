// YAML definitions -> model. Syntax and shape problems are reported here;
// references and graph soundness are checked afterwards by check_catalog.

#include "common/text_file.hpp"
#include "definitions/reader.hpp"
#include "definitions/yaml_dom.hpp"
#include "graph/check.hpp"

#include <onestop/clock.hpp>
#include <onestop/definitions.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <system_error>

namespace onestop {

namespace {

using yaml::Node;
using yaml::Reader;
using Fields = yaml::Reader::Fields;

// Names flow guards may read (docs/expressions.md).
const ExprScope& guard_scope() {
  static const ExprScope scope{
      {"form", "applicant", "case"},
      {"outcome", "approved", "rejected", "all_approved", "any_rejected", "approvals", "rejections"}};
  return scope;
}

// Names a material's required_if may read.
const ExprScope& material_scope() {
  static const ExprScope scope{{"form", "applicant"}, {}};
  return scope;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = s.find(sep, start);
    parts.push_back(trim(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start)));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return parts;
}

// A date, blanks around it allowed (as around the ".." of a range).
std::optional<std::chrono::sys_days> date_in(std::string_view s) {
  const auto d = parse_date(trim(s));
  if (!d) return std::nullopt;
  return std::chrono::sys_days{*d};
}

// "HH:MM" -> minutes after midnight (24:00 allowed as an end).
std::optional<int> parse_clock(std::string_view s) {
  s = trim(s);
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  int h = 0;
  int m = 0;
  auto [p1, e1] = std::from_chars(s.data(), s.data() + 2, h);
  auto [p2, e2] = std::from_chars(s.data() + 3, s.data() + 5, m);
  if (e1 != std::errc() || e2 != std::errc() || p1 != s.data() + 2 || p2 != s.data() + 5) return std::nullopt;
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

class Loader {
 public:
  Loader(Catalog& catalog, std::vector<Diagnostic>& diagnostics)
      : catalog_(catalog), diagnostics_(diagnostics) {}

  void load_file(const yaml::File& file) {
    Reader r(file.name, diagnostics_);
    for (const Node* doc : file.documents) load_document(r, doc);
  }

 private:
  void load_document(Reader& r, const Node* doc) {
    if (doc->is_null()) return;  // an empty document
    Fields f(r, doc, "a definitions document",
             {"departments", "roles", "item", "items", "flow", "flows", "theme", "themes",
              "calendar", "calendars", "rules", "default_calendar"});
    if (!f.ok()) return;
    each(r, f.get("departments"), "departments", [&](const Node* n) { department(r, n); });
    each(r, f.get("roles"), "roles", [&](const Node* n) { role(r, n); });
    if (const Node* n = f.get("item")) item(r, n);
    each(r, f.get("items"), "items", [&](const Node* n) { item(r, n); });
    if (const Node* n = f.get("flow")) flow(r, n);
    each(r, f.get("flows"), "flows", [&](const Node* n) { flow(r, n); });
    if (const Node* n = f.get("theme")) theme(r, n);
    each(r, f.get("themes"), "themes", [&](const Node* n) { theme(r, n); });
    if (const Node* n = f.get("calendar")) calendar(r, n);
    each(r, f.get("calendars"), "calendars", [&](const Node* n) { calendar(r, n); });
    each(r, f.get("rules"), "rules", [&](const Node* n) { rule(r, n); });
    if (auto id = r.identifier(f.get("default_calendar"), "default_calendar")) {
      if (!catalog_.default_calendar.empty() && catalog_.default_calendar != *id) {
        r.error(f.get("default_calendar"), "duplicate-id",
                fmt::format("default_calendar set twice ('{}' and '{}')", catalog_.default_calendar, *id));
      }
      catalog_.default_calendar = *id;
    }
  }

  template <typename F>
  void each(Reader& r, const Node* list, std::string_view what, F&& f) {
    if (list == nullptr) return;
    if (!list->is_sequence()) {
      r.error(list, "wrong-type", fmt::format("'{}' must be a list, not {}", what, list->describe()));
      return;
    }
    for (const Node* n : list->children) f(n);
  }

  void department(Reader& r, const Node* n) {
    Fields f(r, n, "a department", {"id", "name", "parent", "credit_code"});
    if (!f.ok()) return;
    Department d;
    d.where = r.at(n);
    d.id = r.identifier(f.get("id", true), "department id").value_or("");
    d.name = r.text(f.get("name", true), "department name").value_or("");
    d.parent = r.identifier(f.get("parent"), "parent department").value_or("");
    if (const Node* code = f.get("credit_code")) {
      d.credit_code = r.text(code, "credit_code").value_or("");
      if (d.credit_code.empty() && code->is_scalar()) {  // written but blank: a slip, not "none"
        r.error(code, "bad-identity",
                fmt::format("department '{}' credit_code is empty: give its 18-character unified social credit code, or "
                            "leave the field out",
                            d.id));
      }
    }
    if (!d.id.empty()) catalog_.departments.push_back(std::move(d));
  }

  void role(Reader& r, const Node* n) {
    Fields f(r, n, "a role", {"id", "name", "department"});
    if (!f.ok()) return;
    Role x;
    x.where = r.at(n);
    x.id = r.identifier(f.get("id", true), "role id").value_or("");
    x.name = r.text(f.get("name", true), "role name").value_or("");
    x.department = r.identifier(f.get("department"), "role department").value_or("");
    if (!x.id.empty()) catalog_.roles.push_back(std::move(x));
  }

  TimeLimits limits(Reader& r, const Node* n, std::string_view what) {
    TimeLimits out;
    if (n == nullptr) return out;
    if (n->is_scalar()) {
      out.promised = r.time_limit(n, what);
      return out;
    }
    Fields f(r, n, what, {"statutory", "promised"});
    if (!f.ok()) return out;
    out.statutory = r.time_limit(f.get("statutory"), "statutory limit");
    out.promised = r.time_limit(f.get("promised"), "promised limit");
    return out;
  }

  void item(Reader& r, const Node* n) {
    Fields f(r, n, "an item",
             {"code", "version", "implementation_code", "name", "type", "level", "department",
              "joint_departments", "legal_basis", "applicants", "time_limit", "fees",
              "online_depth", "max_visits", "conditions", "materials", "flow", "flow_version",
              "result"});
    if (!f.ok()) return;
    Item it;
    it.where = r.at(n);
    it.code = r.identifier(f.get("code", true), "item code").value_or("");
    it.version = static_cast<int>(r.integer(f.get("version"), "version", 1, 1'000'000).value_or(1));
    it.implementation_code = r.text(f.get("implementation_code"), "implementation_code").value_or("");
    if (it.implementation_code.size() > 24) {
      r.error(f.get("implementation_code"), "bad-value",
              "implementation_code is longer than 24 characters (GB/T 39046: an..24)");
    }
    it.name = r.text(f.get("name", true), "item name").value_or("");
    if (auto t = r.choice<ItemType>(
            f.get("type", true), "item type",
            {{"administrative_licence", ItemType::administrative_licence},
             {"administrative_penalty", ItemType::administrative_penalty},
             {"administrative_compulsion", ItemType::administrative_compulsion},
             {"administrative_levy", ItemType::administrative_levy},
             {"administrative_benefit", ItemType::administrative_benefit},
             {"administrative_inspection", ItemType::administrative_inspection},
             {"administrative_confirmation", ItemType::administrative_confirmation},
             {"administrative_award", ItemType::administrative_award},
             {"administrative_adjudication", ItemType::administrative_adjudication},
             {"other_power", ItemType::other_power},
             {"public_service", ItemType::public_service}})) {
      it.type = *t;
    }
    it.level = r.choice<ServiceLevel>(f.get("level"), "level",
                                      {{"national", ServiceLevel::national},
                                       {"provincial", ServiceLevel::provincial},
                                       {"city", ServiceLevel::city},
                                       {"county", ServiceLevel::county},
                                       {"town", ServiceLevel::town},
                                       {"village", ServiceLevel::village}});
    it.department = r.identifier(f.get("department", true), "department").value_or("");
    it.joint_departments = r.text_list(f.get("joint_departments"), "joint department", true);
    it.legal_basis = r.text_list(f.get("legal_basis"), "legal basis", false);
    if (const Node* a = f.get("applicants", true)) {
      if (!a->is_sequence()) {
        r.error(a, "wrong-type", fmt::format("applicants must be a list, not {}", a->describe()));
      } else {
        for (const Node* k : a->children) {
          if (auto kind = r.choice<ApplicantKind>(k, "applicant kind",
                                                  {{"natural_person", ApplicantKind::natural_person},
                                                   {"legal_person", ApplicantKind::legal_person},
                                                   {"other_organisation", ApplicantKind::other_organisation}})) {
            it.applicants.push_back(*kind);
          }
        }
        if (a->children.empty()) r.error(a, "bad-value", "applicants is empty");
      }
    }
    it.time_limit = limits(r, f.get("time_limit", true), "item time_limit");
    each(r, f.get("fees"), "fees", [&](const Node* fee) {
      Fields ff(r, fee, "a fee", {"name", "amount", "basis"});
      if (!ff.ok()) return;
      Fee x;
      x.name = r.text(ff.get("name", true), "fee name").value_or("");
      x.amount = r.number(ff.get("amount", true), "fee amount").value_or(0);
      if (x.amount < 0) r.error(ff.get("amount"), "bad-value", "fee amount is negative");
      x.basis = r.text(ff.get("basis"), "fee basis").value_or("");
      it.fees.push_back(std::move(x));
    });
    if (auto d = r.integer(f.get("online_depth"), "online_depth", 1, 4)) {
      it.online_depth = static_cast<OnlineDepth>(*d);
    }
    it.max_visits = static_cast<int>(r.integer(f.get("max_visits"), "max_visits", 0, 100).value_or(1));
    it.conditions = r.text(f.get("conditions"), "conditions").value_or("");
    each(r, f.get("materials"), "materials", [&](const Node* m) { material(r, m, it); });
    it.flow = r.identifier(f.get("flow", true), "flow").value_or("");
    if (auto v = r.integer(f.get("flow_version"), "flow_version", 1, 1'000'000)) {
      it.flow_version = static_cast<int>(*v);
    }
    if (const Node* res = f.get("result")) {
      Fields rf(r, res, "an item result", {"name", "licence_type"});
      it.result.name = r.text(rf.get("name"), "result name").value_or("");
      it.result.licence_type = r.text(rf.get("licence_type"), "result licence_type").value_or("");
    }
    if (!it.code.empty()) catalog_.items.push_back(std::move(it));
  }

  void material(Reader& r, const Node* n, Item& it) {
    Fields f(r, n, "a material",
             {"id", "name", "form", "copies", "necessity", "required_if", "source",
              "licence_type", "issuer", "file_types", "max_size", "sample", "note"});
    if (!f.ok()) return;
    Material m;
    m.where = r.at(n);
    m.id = r.identifier(f.get("id", true), "material id").value_or("");
    m.name = r.text(f.get("name", true), "material name").value_or("");
    if (auto form = r.choice<MaterialForm>(f.get("form"), "material form",
                                           {{"original", MaterialForm::original},
                                            {"copy", MaterialForm::copy},
                                            {"original_and_copy", MaterialForm::original_and_copy},
                                            {"electronic", MaterialForm::electronic}})) {
      m.form = *form;
    }
    m.copies = static_cast<int>(r.integer(f.get("copies"), "copies", 1, 1000).value_or(1));
    if (auto nec = r.choice<Necessity>(f.get("necessity"), "necessity",
                                       {{"required", Necessity::required},
                                        {"optional", Necessity::optional},
                                        {"conditional", Necessity::conditional},
                                        {"deferrable", Necessity::deferrable}})) {
      m.necessity = *nec;
    }
    if (const Node* cond = f.get("required_if")) {
      m.required_if = r.expression(cond, "required_if", material_scope());
      if (m.necessity != Necessity::required && m.necessity != Necessity::conditional &&
          f.get("necessity") != nullptr) {
        r.error(f.get("necessity"), "bad-value",
                fmt::format("material '{}' has required_if, so its necessity is conditional, not {}",
                            m.id, to_string(m.necessity)));
      }
      m.necessity = Necessity::conditional;
    } else if (m.necessity == Necessity::conditional) {
      r.error(f.get("necessity"), "missing-field",
              fmt::format("material '{}' is conditional but has no required_if", m.id));
    }
    if (auto src = r.choice<MaterialSource>(
            f.get("source"), "material source",
            {{"applicant", MaterialSource::applicant},
             {"certificate_library", MaterialSource::certificate_library},
             {"shared_data", MaterialSource::shared_data},
             {"issued_by_department", MaterialSource::issued_by_department}})) {
      m.source = *src;
    }
    m.licence_type = r.text(f.get("licence_type"), "licence_type").value_or("");
    if (m.source == MaterialSource::certificate_library && m.licence_type.empty()) {
      r.error(n, "missing-field",
              fmt::format("material '{}' comes from the certificate library but has no licence_type", m.id));
    }
    m.issuer = r.text(f.get("issuer"), "issuer").value_or("");
    for (auto& t : r.text_list(f.get("file_types"), "file type", false)) {
      std::string lower = t;
      if (!lower.empty() && lower.front() == '.') lower.erase(0, 1);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      m.file_types.push_back(std::move(lower));
    }
    if (const Node* size = f.get("max_size")) m.max_bytes = byte_size(r, size);
    m.sample = r.text(f.get("sample"), "sample").value_or("");
    m.note = r.text(f.get("note"), "note").value_or("");
    if (!m.id.empty()) it.materials.push_back(std::move(m));
  }

  static std::int64_t byte_size(Reader& r, const Node* n) {
    if (n->is_scalar() && !n->quoted) {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(n->value.data(), n->value.data() + n->value.size(), v);
      if (ec == std::errc() && p == n->value.data() + n->value.size() && v > 0) return v;
    }
    if (auto s = r.text(n, "max_size")) {
      std::string_view t = trim(*s);
      std::size_t digits = 0;
      while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
      std::int64_t v = 0;
      std::from_chars(t.data(), t.data() + digits, v);
      const std::string_view unit = trim(t.substr(digits));
      std::int64_t scale = 0;
      if (unit == "B" || unit == "bytes") scale = 1;
      if (unit == "KB" || unit == "KiB" || unit == "kB") scale = 1024;
      if (unit == "MB" || unit == "MiB") scale = 1024 * 1024;
      if (unit == "GB" || unit == "GiB") scale = 1024LL * 1024 * 1024;
      if (digits > 0 && digits < 10 && scale > 0 && v > 0) return v * scale;
      r.error(n, "bad-value", fmt::format("max_size '{}' is not a size", *s), "write e.g. '20 MB' or '500 KB'");
    }
    return 0;
  }

  void flow(Reader& r, const Node* n) {
    Fields f(r, n, "a flow", {"id", "version", "name", "time_limit", "calendar", "nodes", "edges", "returns"});
    if (!f.ok()) return;
    Flow fl;
    fl.where = r.at(n);
    fl.id = r.identifier(f.get("id", true), "flow id").value_or("");
    fl.version = static_cast<int>(r.integer(f.get("version"), "version", 1, 1'000'000).value_or(1));
    fl.name = r.text(f.get("name"), "flow name").value_or("");
    fl.time_limit = limits(r, f.get("time_limit"), "flow time_limit");
    fl.calendar = r.identifier(f.get("calendar"), "calendar").value_or("");
    if (const Node* nodes = f.get("nodes", true)) {
      if (!nodes->is_mapping()) {
        r.error(nodes, "wrong-type", fmt::format("nodes must be a mapping of id to node, not {}", nodes->describe()));
      } else {
        fl.nodes.reserve(nodes->size());
        for (std::size_t i = 0; i + 1 < nodes->children.size(); i += 2) {
          node(r, nodes->children[i], nodes->children[i + 1], fl);
        }
      }
    }
    if (const Node* edges = f.get("edges", true)) {
      if (!edges->is_sequence()) {
        r.error(edges, "wrong-type", fmt::format("edges must be a list, not {}", edges->describe()));
      } else {
        fl.edges.reserve(edges->size());
        for (const Node* e : edges->children) edge(r, e, fl);
      }
    }
    if (const Node* returns = f.get("returns")) {
      if (!returns->is_mapping()) {
        r.error(returns, "wrong-type", fmt::format("returns must be a mapping of step to targets, not {}", returns->describe()));
      } else {
        for (std::size_t i = 0; i + 1 < returns->children.size(); i += 2) {
          return_decl(r, returns->children[i], returns->children[i + 1], fl);
        }
      }
    }
    if (!fl.id.empty()) catalog_.flows.push_back(std::move(fl));
  }

  void node(Reader& r, const Node* key, const Node* n, Flow& fl) {
    const Node* kind_node = n->is_mapping() ? n->get("kind") : nullptr;
    ::onestop::Node out;
    out.where = r.at(key);
    out.id = r.identifier(key, "node id").value_or("");
    if (!n->is_mapping()) {
      r.error(n, "wrong-type", fmt::format("node '{}' must be a mapping with a kind, not {}", out.id, n->describe()));
      return;
    }
    auto kind = r.choice<NodeKind>(kind_node, fmt::format("kind of node '{}'", out.id),
                                   {{"start", NodeKind::start}, {"task", NodeKind::task},
                                    {"countersign", NodeKind::countersign},
                                    {"parallel", NodeKind::parallel}, {"join", NodeKind::join},
                                    {"exclusive", NodeKind::exclusive},
                                    {"inclusive", NodeKind::inclusive},
                                    {"subflow", NodeKind::subflow},
                                    {"automatic", NodeKind::automatic},
                                    {"timer", NodeKind::timer}, {"end", NodeKind::end}});
    if (kind_node == nullptr) {
      r.error(n, "missing-field", fmt::format("node '{}' has no 'kind'", out.id));
    }
    if (!kind) {
      if (!out.id.empty()) {
        out.kind = NodeKind::task;  // keep the id so edges to it do not cascade
        fl.nodes.push_back(std::move(out));
      }
      return;
    }
    out.kind = *kind;
    const std::string what = fmt::format("{} node '{}'", to_string(out.kind), out.id);
    auto make_fields = [&]() -> Fields {
      switch (out.kind) {
        case NodeKind::task:
          return Fields(r, n, what, {"kind", "name", "assignees", "time_limit", "on_timeout", "escalate_to"});
        case NodeKind::countersign:
          return Fields(r, n, what, {"kind", "name", "assignees", "time_limit", "on_timeout", "escalate_to",
                                     "complete_when", "signers"});
        case NodeKind::subflow:
          return Fields(r, n, what, {"kind", "name", "item", "flow", "time_limit", "on_timeout", "escalate_to"});
        case NodeKind::automatic:
          return Fields(r, n, what, {"kind", "name", "handler", "time_limit"});
        case NodeKind::timer:
          return Fields(r, n, what, {"kind", "name", "wait"});
        case NodeKind::end:
          return Fields(r, n, what, {"kind", "name", "outcome"});
        default:
          return Fields(r, n, what, {"kind", "name"});
      }
    };
    Fields f = make_fields();
    out.name = r.text(f.get("name"), "node name").value_or("");
    if (const Node* a = f.get("assignees", out.kind == NodeKind::task || out.kind == NodeKind::countersign)) {
      Fields af(r, a, fmt::format("assignees of node '{}'", out.id), {"user", "role", "department"});
      out.assignees.users = r.text_list(af.get("user"), "user", true);
      out.assignees.roles = r.text_list(af.get("role"), "role", true);
      out.assignees.departments = r.text_list(af.get("department"), "department", true);
      if (af.ok() && out.assignees.empty()) {
        r.error(a, "missing-field", fmt::format("node '{}' has no assignees (user, role or department)", out.id));
      }
    }
    out.time_limit = r.time_limit(f.get("time_limit"), "time_limit");
    if (auto t = r.choice<TimeoutAction>(f.get("on_timeout"), "on_timeout",
                                         {{"warn", TimeoutAction::warn},
                                          {"escalate", TimeoutAction::escalate},
                                          {"deem_consent", TimeoutAction::deem_consent}})) {
      out.on_timeout = *t;
    }
    out.escalate_to = r.identifier(f.get("escalate_to"), "escalate_to").value_or("");
    if (out.on_timeout == TimeoutAction::escalate && out.escalate_to.empty()) {
      r.error(f.get("on_timeout"), "missing-field",
              fmt::format("node '{}' escalates on timeout but has no escalate_to", out.id));
    }
    if (out.on_timeout != TimeoutAction::warn && !out.time_limit && f.get("on_timeout") != nullptr) {
      r.error(f.get("on_timeout"), "missing-field",
              fmt::format("node '{}' has on_timeout but no time_limit", out.id));
    }
    if (const Node* cw = f.get("complete_when")) complete_when(r, cw, out);
    out.signers = r.text_list(f.get("signers"), "signer", true);
    out.item = r.identifier(f.get("item"), "item").value_or("");
    out.flow = r.identifier(f.get("flow"), "flow").value_or("");
    if (out.kind == NodeKind::subflow && f.ok()) {
      if (out.item.empty() == out.flow.empty() && f.get("item") == nullptr && f.get("flow") == nullptr) {
        r.error(n, "missing-field", fmt::format("subflow node '{}' needs an 'item' or a 'flow'", out.id));
      } else if (!out.item.empty() && !out.flow.empty()) {
        r.error(n, "bad-value", fmt::format("subflow node '{}' has both 'item' and 'flow'; give one", out.id));
      }
    }
    out.handler = r.identifier(f.get("handler", out.kind == NodeKind::automatic), "handler").value_or("");
    out.wait = r.time_limit(f.get("wait", out.kind == NodeKind::timer), "wait");
    if (auto o = r.choice<Outcome>(f.get("outcome"), "outcome",
                                   {{"approved", Outcome::approved},
                                    {"rejected", Outcome::rejected},
                                    {"not_accepted", Outcome::not_accepted},
                                    {"withdrawn", Outcome::withdrawn},
                                    {"terminated", Outcome::terminated},
                                    {"completed", Outcome::completed}})) {
      out.outcome = *o;
    }
    if (!out.id.empty()) fl.nodes.push_back(std::move(out));
  }

  void complete_when(Reader& r, const Node* cw, ::onestop::Node& out) {
    if (!cw->is_scalar()) {
      r.error(cw, "wrong-type", "complete_when must be all, any, a quota (3) or a share (\"60%\")");
      return;
    }
    const std::string& v = cw->value;
    if (v == "all") {
      out.complete_when = CompletionRule::all;
    } else if (v == "any") {
      out.complete_when = CompletionRule::any;
    } else if (!v.empty() && v.back() == '%') {
      double share = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size() - 1, share);
      if (ec != std::errc() || p != v.data() + v.size() - 1) {
        r.error(cw, "bad-value", fmt::format("complete_when '{}' is not a share like \"60%\"", v));
        return;
      }
      out.complete_when = CompletionRule::quota;
      out.quota_share = share / 100.0;
      if (out.quota_share <= 0 || out.quota_share > 1) {
        r.error(cw, "quota-out-of-range",
                fmt::format("countersign '{}' share {} is outside (0%, 100%]", out.id, v));
      }
    } else if (auto q = r.integer(cw, "complete_when", -1'000'000, 1'000'000)) {
      out.complete_when = CompletionRule::quota;
      out.quota = static_cast<int>(*q);
      if (out.quota < 1) {
        r.error(cw, "quota-out-of-range",
                fmt::format("countersign '{}' quota {} is below 1", out.id, out.quota));
      }
    }
  }

  void edge_ends(Reader& r, const Node* at, std::string_view spec, std::vector<std::string>& from,
                 std::vector<std::string>& to) {
    const std::size_t arrow = spec.find("->");
    if (arrow == std::string_view::npos || spec.find("->", arrow + 2) != std::string_view::npos) {
      r.error(at, "bad-value", fmt::format("edge '{}' must read 'from -> to'", spec),
              "e.g. 'a -> b', 'a -> b, c' or 'a, b -> c'");
      return;
    }
    auto side = [&](std::string_view s, std::vector<std::string>& out) {
      for (auto part : split(s, ',')) {
        if (!yaml::is_identifier(part)) {
          r.error(at, "bad-value",
                  part.empty() ? fmt::format("edge '{}' has an empty node name", spec)
                               : fmt::format("'{}' in edge '{}' is not a node id", part, spec));
          out.clear();
          return;
        }
        out.emplace_back(part);
      }
    };
    side(spec.substr(0, arrow), from);
    side(spec.substr(arrow + 2), to);
  }

  void edge(Reader& r, const Node* e, Flow& fl) {
    std::vector<std::string> from;
    std::vector<std::string> to;
    const Node* attrs = nullptr;
    if (e->is_scalar()) {
      edge_ends(r, e, e->value, from, to);
    } else if (e->is_mapping() && e->get("from") != nullptr) {
      attrs = e;
      Fields f(r, e, "an edge", {"from", "to", "when", "otherwise", "loop"});
      if (auto a = r.identifier(f.get("from"), "edge from")) from.push_back(*a);
      to = r.text_list(f.get("to", true), "edge to", true);
    } else if (e->is_mapping() && e->size() == 1) {
      const Node* key = e->children[0];
      if (key->is_scalar()) edge_ends(r, key, key->value, from, to);
      attrs = e->children[1]->is_null() ? nullptr : e->children[1];
      if (attrs != nullptr) {
        Fields f(r, attrs, fmt::format("edge '{}'", key->value), {"when", "otherwise", "loop"});
        if (!f.ok()) attrs = nullptr;
      }
    } else {
      r.error(e, "wrong-type",
              "an edge must be 'a -> b', 'a -> b: { when: ... }' or { from: a, to: b, when: ... }");
      return;
    }
    Expr guard;
    bool otherwise = false;
    bool loop = false;
    if (attrs != nullptr) {
      if (const Node* w = attrs->get("when")) guard = r.expression(w, "guard", guard_scope());
      otherwise = r.boolean(attrs->get("otherwise"), "otherwise").value_or(false);
      loop = r.boolean(attrs->get("loop"), "loop").value_or(false);
      if (attrs->get("when") != nullptr && otherwise) {
        r.error(attrs, "bad-value", "an edge cannot have both 'when' and 'otherwise'");
      }
    }
    for (const auto& a : from) {
      for (const auto& b : to) {
        Edge out;
        out.from = a;
        out.to = b;
        out.guard = guard;
        out.is_default = otherwise;
        out.loop = loop;
        out.where = r.at(e->is_mapping() && attrs != e ? e->children[0] : e);
        fl.edges.push_back(std::move(out));
      }
    }
  }

  void return_decl(Reader& r, const Node* key, const Node* value, Flow& fl) {
    Return ret;
    ret.where = r.at(key);
    ret.from = r.identifier(key, "return step").value_or("");
    if (value->is_mapping()) {
      Fields f(r, value, fmt::format("returns of '{}'", ret.from), {"to", "siblings"});
      ret.to = r.text_list(f.get("to", true), "return target", true);
      if (auto s = r.choice<ReturnSiblings>(f.get("siblings"), "siblings",
                                            {{"cancel", ReturnSiblings::cancel},
                                             {"keep", ReturnSiblings::keep}})) {
        ret.siblings = *s;
      }
    } else {
      ret.to = r.text_list(value, "return target", true);
    }
    if (ret.to.empty() && !value->is_mapping()) {
      r.error(value, "missing-field", fmt::format("returns of '{}' list no target", ret.from));
    }
    if (!ret.from.empty()) fl.returns.push_back(std::move(ret));
  }

  void theme(Reader& r, const Node* n) {
    Fields f(r, n, "a theme", {"id", "version", "name", "lead_department", "flow", "items", "time_limit"});
    if (!f.ok()) return;
    Theme t;
    t.where = r.at(n);
    t.id = r.identifier(f.get("id", true), "theme id").value_or("");
    t.version = static_cast<int>(r.integer(f.get("version"), "version", 1, 1'000'000).value_or(1));
    t.name = r.text(f.get("name", true), "theme name").value_or("");
    t.lead_department = r.identifier(f.get("lead_department", true), "lead_department").value_or("");
    t.flow = r.identifier(f.get("flow", true), "flow").value_or("");
    t.items = r.text_list(f.get("items"), "item code", true);
    t.time_limit = limits(r, f.get("time_limit"), "theme time_limit");
    if (!t.id.empty()) catalog_.themes.push_back(std::move(t));
  }

  void dates(Reader& r, const Node* list, std::string_view what, std::vector<std::chrono::sys_days>& out) {
    for (const auto& s : r.text_list(list, what, false)) {
      const std::size_t dots = s.find("..");
      auto bad = [&] {
        r.error(list, "bad-value", fmt::format("{} '{}' is not a date (YYYY-MM-DD) or range (FROM..TO)", what, s));
      };
      if (dots == std::string::npos) {
        if (auto d = date_in(s)) out.push_back(*d); else bad();
        continue;
      }
      auto a = date_in(std::string_view(s).substr(0, dots));
      auto b = date_in(std::string_view(s).substr(dots + 2));
      if (!a || !b || *b < *a || (*b - *a).count() > 366) {
        bad();
        continue;
      }
      for (auto d = *a; d <= *b; d += std::chrono::days{1}) out.push_back(d);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }

  void calendar(Reader& r, const Node* n) {
    Fields f(r, n, "a calendar", {"id", "name", "extends", "utc_offset", "rest_days", "working_hours",
                                  "holidays", "workdays"});
    if (!f.ok()) return;
    Calendar c;
    c.where = r.at(n);
    c.id = r.identifier(f.get("id", true), "calendar id").value_or("");
    c.name = r.text(f.get("name"), "calendar name").value_or("");
    c.extends = r.identifier(f.get("extends"), "extends").value_or("");
    if (auto off = r.text(f.get("utc_offset"), "utc_offset")) {
      const std::string_view s = *off;
      std::optional<int> minutes;
      if (s.size() == 6 && (s[0] == '+' || s[0] == '-')) minutes = parse_clock(s.substr(1));
      if (!minutes || *minutes > 14 * 60) {
        r.error(f.get("utc_offset"), "bad-value", fmt::format("utc_offset '{}' is not like \"+08:00\"", s));
      } else {
        c.utc_offset_minutes = s[0] == '-' ? -*minutes : *minutes;
      }
    }
    if (const Node* rd = f.get("rest_days")) {
      std::vector<int> days;
      for (const auto& name : r.text_list(rd, "rest day", false)) {
        static constexpr std::string_view names[] = {"sunday", "monday", "tuesday", "wednesday",
                                                     "thursday", "friday", "saturday"};
        auto it = std::find(std::begin(names), std::end(names), name);
        if (it == std::end(names)) {
          r.error(rd, "bad-value", fmt::format("rest day '{}' is not a weekday name (monday .. sunday)", name));
        } else {
          days.push_back(static_cast<int>(it - std::begin(names)));
        }
      }
      c.rest_weekdays = std::move(days);
    }
    if (const Node* wh = f.get("working_hours")) {
      std::vector<WorkingPeriod> periods;
      for (const auto& p : r.text_list(wh, "working hours", false)) {
        const std::size_t dash = p.find('-');
        std::optional<int> a;
        std::optional<int> b;
        if (dash != std::string::npos) {
          a = parse_clock(std::string_view(p).substr(0, dash));
          b = parse_clock(std::string_view(p).substr(dash + 1));
        }
        if (!a || !b || *b <= *a || (!periods.empty() && *a < periods.back().end_minute)) {
          r.error(wh, "bad-value",
                  fmt::format("working hours '{}' must be \"HH:MM-HH:MM\", ascending and not overlapping", p));
        } else {
          periods.push_back({*a, *b});
        }
      }
      c.working_hours = std::move(periods);
    }
    dates(r, f.get("holidays"), "holiday", c.holidays);
    dates(r, f.get("workdays"), "make-up working day", c.workdays);
    std::vector<std::chrono::sys_days> both;
    std::set_intersection(c.holidays.begin(), c.holidays.end(), c.workdays.begin(), c.workdays.end(),
                          std::back_inserter(both));
    for (auto d : both) {
      r.error(f.get("workdays"), "bad-value",
              fmt::format("{} is both a holiday and a make-up working day in calendar '{}'",
                          format_date(d), c.id));
    }
    if (!c.id.empty()) catalog_.calendars.push_back(std::move(c));
  }

  void rule(Reader& r, const Node* n) {
    Fields f(r, n, "a warning rule", {"id", "when", "warn", "applies_to", "notify", "escalate"});
    if (!f.ok()) return;
    WarningRule w;
    w.where = r.at(n);
    w.id = r.identifier(f.get("id"), "rule id").value_or(fmt::format("rule-{}", catalog_.rules.size() + 1));
    if (const Node* when = f.get("when", true)) {
      if (auto s = r.text(when, "rule condition")) rule_condition(r, when, *s, w);
    }
    if (auto lvl = r.choice<WarningLevel>(f.get("warn", true), "warn",
                                          {{"yellow", WarningLevel::yellow}, {"red", WarningLevel::red}})) {
      w.level = *lvl;
    }
    if (auto s = r.choice<RuleScope>(f.get("applies_to"), "applies_to",
                                     {{"case", RuleScope::case_limit},
                                      {"step", RuleScope::step_limit},
                                      {"both", RuleScope::both}})) {
      w.scope = *s;
    }
    w.notify = r.text_list(f.get("notify"), "notify target", true);
    w.escalate_to = r.identifier(f.get("escalate"), "escalate").value_or("");
    catalog_.rules.push_back(std::move(w));
  }

  static void rule_condition(Reader& r, const Node* at, std::string_view s, WarningRule& w) {
    s = trim(s);
    auto after = [&](std::string_view prefix) -> std::optional<std::string_view> {
      if (s.substr(0, prefix.size()) != prefix) return std::nullopt;
      return trim(s.substr(prefix.size()));
    };
    if (s == "overdue") {
      w.used_share = 1.0;
      return;
    }
    if (auto rest = after("used")) {
      auto v = *rest;
      if (v.substr(0, 2) == ">=" && !v.empty() && v.back() == '%') {
        v = trim(v.substr(2, v.size() - 3));
        double share = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), share);
        if (ec == std::errc() && p == v.data() + v.size() && share > 0 && share <= 1000) {
          w.used_share = share / 100.0;
          return;
        }
      }
    } else if (auto rest2 = after("remaining")) {
      auto v = *rest2;
      if (v.substr(0, 2) == "<=") {
        if (auto limit = parse_time_limit(v.substr(2))) {
          w.before_deadline = limit;
          return;
        }
      }
    }
    r.error(at, "bad-condition", fmt::format("rule condition '{}' is not understood", s),
            "write 'used >= 80%', 'remaining <= 1 working day' or 'overdue'");
  }

  Catalog& catalog_;
  std::vector<Diagnostic>& diagnostics_;
};

void sort_diagnostics(std::vector<Diagnostic>& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) <
           std::tie(b.where.file, b.where.line, b.where.column);
  });
}

LoadResult finish(std::shared_ptr<Catalog> catalog, std::vector<Diagnostic> diagnostics,
                  const LoadOptions& options) {
  check::run(*catalog, options.check_graphs, diagnostics);
  sort_diagnostics(diagnostics);
  return LoadResult{std::move(catalog), std::move(diagnostics)};
}

// Whether a file's modeline (`# yaml-language-server: $schema=...` in its
// first five lines) names a schema other than onestop.schema.json: flow
// tests, scenarios and other YAML formats that live beside definitions in a
// directory, as tests/check_schemas.py and docs/editor-setup.md have it.
bool other_format(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < 5 && std::getline(in, line); ++i) {
    const auto at = line.find("yaml-language-server:");
    if (line.find('#') == std::string::npos || at == std::string::npos) continue;
    const auto schema = line.find("$schema=", at);
    if (schema == std::string::npos) continue;
    std::string_view uri = trim(std::string_view(line).substr(schema + 8));
    uri = uri.substr(0, uri.find_first_of(" \t"));
    const auto slash = uri.find_last_of('/');
    return (slash == std::string_view::npos ? uri : uri.substr(slash + 1)) != "onestop.schema.json";
  }
  return false;
}

}  // namespace

LoadResult load_catalog(const std::vector<Source>& sources, const LoadOptions& options) {
  auto catalog = std::make_shared<Catalog>();
  std::vector<Diagnostic> diagnostics;
  Loader loader(*catalog, diagnostics);
  for (const auto& source : sources) {
    yaml::File file;
    file.name = source.name;
    yaml::parse(source.text, options, file, diagnostics);
    loader.load_file(file);
  }
  return finish(std::move(catalog), std::move(diagnostics), options);
}

LoadResult load_catalog(const std::vector<std::filesystem::path>& paths, const LoadOptions& options) {
  namespace fs = std::filesystem;
  std::vector<Diagnostic> diagnostics;
  std::vector<fs::path> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> found;
      for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
        const auto ext = it->path().extension();
        if (it->is_regular_file(ec) && (ext == ".yaml" || ext == ".yml") && !other_format(it->path())) {
          found.push_back(it->path());
        }
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(path, ec)) {
      files.push_back(path);
    } else {
      diagnostics.push_back(Diagnostic{Severity::error, {path.string(), 0, 0}, "io-error",
                                       "no such file or directory", {}});
    }
  }
  auto catalog = std::make_shared<Catalog>();
  Loader loader(*catalog, diagnostics);
  for (const auto& path : files) {
    yaml::File file;
    file.name = path.string();
    TextFile read = read_text_file(path, options.max_file_bytes);
    if (!read.error.empty()) {
      diagnostics.push_back(Diagnostic{Severity::error, {file.name, 0, 0}, read.too_large ? "file-too-large" : "io-error",
                                       read.too_large ? read.error : "cannot read the file: " + read.error,
                                       read.too_large ? "raise LoadOptions::max_file_bytes if this is intended" : ""});
      continue;
    }
    yaml::parse(read.text, options, file, diagnostics);
    loader.load_file(file);
  }
  return finish(std::move(catalog), std::move(diagnostics), options);
}

}  // namespace onestop
