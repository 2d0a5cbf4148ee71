#include <onestop/model.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace onestop {

std::string TimeLimit::to_string() const {
  std::string_view unit_name;
  switch (unit) {
    case TimeUnit::working_days: unit_name = amount == 1 ? "working day" : "working days"; break;
    case TimeUnit::natural_days: unit_name = amount == 1 ? "natural day" : "natural days"; break;
    case TimeUnit::working_hours: unit_name = amount == 1 ? "working hour" : "working hours"; break;
    case TimeUnit::natural_hours: unit_name = amount == 1 ? "hour" : "hours"; break;
  }
  return fmt::format("{} {}", amount, unit_name);
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct UnitSpelling {
  std::string_view text;
  TimeUnit unit;
};

// Units as designers write them, English and Chinese.
constexpr UnitSpelling unit_spellings[] = {
    {"working days", TimeUnit::working_days},   {"working day", TimeUnit::working_days},
    {"workdays", TimeUnit::working_days},       {"workday", TimeUnit::working_days},
    {"个工作日", TimeUnit::working_days},       {"工作日", TimeUnit::working_days},
    {"natural days", TimeUnit::natural_days},   {"natural day", TimeUnit::natural_days},
    {"calendar days", TimeUnit::natural_days},  {"calendar day", TimeUnit::natural_days},
    {"days", TimeUnit::natural_days},           {"day", TimeUnit::natural_days},
    {"个自然日", TimeUnit::natural_days},       {"自然日", TimeUnit::natural_days},
    {"天", TimeUnit::natural_days},
    {"working hours", TimeUnit::working_hours}, {"working hour", TimeUnit::working_hours},
    {"个工作小时", TimeUnit::working_hours},    {"工作小时", TimeUnit::working_hours},
    {"hours", TimeUnit::natural_hours},         {"hour", TimeUnit::natural_hours},
    {"个小时", TimeUnit::natural_hours},        {"小时", TimeUnit::natural_hours},
};

}  // namespace

std::optional<TimeLimit> parse_time_limit(std::string_view text) {
  text = trim(text);
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  constexpr std::size_t max_digits = 6;
  static_assert(max_written_limit_amount == 999'999, "six digits");
  if (digits == 0 || digits > max_digits) return std::nullopt;
  TimeLimit limit;
  std::from_chars(text.data(), text.data() + digits, limit.amount);
  const std::string_view unit = trim(text.substr(digits));
  for (const auto& spelling : unit_spellings) {
    if (unit == spelling.text) {
      limit.unit = spelling.unit;
      return limit;
    }
  }
  return std::nullopt;
}

double approx_working_days(const TimeLimit& limit) noexcept {
  const auto n = static_cast<double>(limit.amount);
  switch (limit.unit) {
    case TimeUnit::working_days: return n;
    case TimeUnit::natural_days: return n * 5.0 / 7.0;
    case TimeUnit::working_hours: return n / 8.0;
    case TimeUnit::natural_hours: return n / 24.0 * 5.0 / 7.0;
  }
  return n;
}

const Material* Item::find_material(std::string_view id) const noexcept {
  for (const auto& m : materials) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

const Node* Flow::find_node(std::string_view id) const noexcept {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

namespace {
template <typename T, typename Key>
const T* newest(const std::vector<T>& all, std::string_view id, std::optional<int> version,
                Key key) noexcept {
  const T* best = nullptr;
  for (const auto& x : all) {
    if (key(x) != id) continue;
    if (version) {
      if (x.version == *version) return &x;
    } else if (best == nullptr || x.version > best->version) {
      best = &x;
    }
  }
  return best;
}

template <typename T>
const T* by_id(const std::vector<T>& all, std::string_view id) noexcept {
  for (const auto& x : all) {
    if (x.id == id) return &x;
  }
  return nullptr;
}
}  // namespace

const Item* Catalog::find_item(std::string_view code, std::optional<int> version) const noexcept {
  return newest(items, code, version, [](const Item& i) -> std::string_view { return i.code; });
}

const Flow* Catalog::find_flow(std::string_view id, std::optional<int> version) const noexcept {
  return newest(flows, id, version, [](const Flow& f) -> std::string_view { return f.id; });
}

const Theme* Catalog::find_theme(std::string_view id, std::optional<int> version) const noexcept {
  return newest(themes, id, version, [](const Theme& t) -> std::string_view { return t.id; });
}

const Calendar* Catalog::find_calendar(std::string_view id) const noexcept {
  return by_id(calendars, id);
}

const Department* Catalog::find_department(std::string_view id) const noexcept {
  return by_id(departments, id);
}

const Role* Catalog::find_role(std::string_view id) const noexcept { return by_id(roles, id); }

std::vector<std::string> Catalog::theme_items(const Theme& theme) const {
  if (!theme.items.empty()) return theme.items;
  std::vector<std::string> codes;
  if (const Flow* flow = find_flow(theme.flow)) {
    for (const auto& node : flow->nodes) {
      if (node.kind == NodeKind::subflow && !node.item.empty() &&
          std::find(codes.begin(), codes.end(), node.item) == codes.end()) {
        codes.push_back(node.item);
      }
    }
  }
  return codes;
}

std::string_view to_string(NodeKind kind) noexcept {
  switch (kind) {
    case NodeKind::start: return "start";
    case NodeKind::task: return "task";
    case NodeKind::countersign: return "countersign";
    case NodeKind::parallel: return "parallel";
    case NodeKind::join: return "join";
    case NodeKind::exclusive: return "exclusive";
    case NodeKind::inclusive: return "inclusive";
    case NodeKind::subflow: return "subflow";
    case NodeKind::automatic: return "automatic";
    case NodeKind::timer: return "timer";
    case NodeKind::end: return "end";
  }
  return "?";
}

std::string_view to_string(ItemType type) noexcept {
  switch (type) {
    case ItemType::administrative_licence: return "administrative_licence";
    case ItemType::administrative_penalty: return "administrative_penalty";
    case ItemType::administrative_compulsion: return "administrative_compulsion";
    case ItemType::administrative_levy: return "administrative_levy";
    case ItemType::administrative_benefit: return "administrative_benefit";
    case ItemType::administrative_inspection: return "administrative_inspection";
    case ItemType::administrative_confirmation: return "administrative_confirmation";
    case ItemType::administrative_award: return "administrative_award";
    case ItemType::administrative_adjudication: return "administrative_adjudication";
    case ItemType::other_power: return "other_power";
    case ItemType::public_service: return "public_service";
  }
  return "?";
}

std::string_view gb_code(ItemType type) noexcept {
  switch (type) {
    case ItemType::administrative_licence: return "01";
    case ItemType::administrative_penalty: return "02";
    case ItemType::administrative_compulsion: return "03";
    case ItemType::administrative_levy: return "04";
    case ItemType::administrative_benefit: return "05";
    case ItemType::administrative_inspection: return "06";
    case ItemType::administrative_confirmation: return "07";
    case ItemType::administrative_award: return "08";
    case ItemType::administrative_adjudication: return "09";
    case ItemType::other_power: return "10";
    case ItemType::public_service: return "20";
  }
  return "??";
}

std::string_view to_string(ApplicantKind kind) noexcept {
  switch (kind) {
    case ApplicantKind::natural_person: return "natural_person";
    case ApplicantKind::legal_person: return "legal_person";
    case ApplicantKind::other_organisation: return "other_organisation";
  }
  return "?";
}

std::string_view to_string(MaterialForm form) noexcept {
  switch (form) {
    case MaterialForm::original: return "original";
    case MaterialForm::copy: return "copy";
    case MaterialForm::original_and_copy: return "original_and_copy";
    case MaterialForm::electronic: return "electronic";
  }
  return "?";
}

std::string_view to_string(Necessity necessity) noexcept {
  switch (necessity) {
    case Necessity::required: return "required";
    case Necessity::optional: return "optional";
    case Necessity::conditional: return "conditional";
    case Necessity::deferrable: return "deferrable";
  }
  return "?";
}

std::string_view to_string(MaterialSource source) noexcept {
  switch (source) {
    case MaterialSource::applicant: return "applicant";
    case MaterialSource::certificate_library: return "certificate_library";
    case MaterialSource::shared_data: return "shared_data";
    case MaterialSource::issued_by_department: return "issued_by_department";
  }
  return "?";
}

std::string_view to_string(CompletionRule rule) noexcept {
  switch (rule) {
    case CompletionRule::all: return "all";
    case CompletionRule::any: return "any";
    case CompletionRule::quota: return "quota";
  }
  return "?";
}

std::string_view to_string(TimeoutAction action) noexcept {
  switch (action) {
    case TimeoutAction::warn: return "warn";
    case TimeoutAction::escalate: return "escalate";
    case TimeoutAction::deem_consent: return "deem_consent";
  }
  return "?";
}

std::string_view to_string(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::approved: return "approved";
    case Outcome::rejected: return "rejected";
    case Outcome::not_accepted: return "not_accepted";
    case Outcome::withdrawn: return "withdrawn";
    case Outcome::terminated: return "terminated";
    case Outcome::completed: return "completed";
  }
  return "?";
}

std::string_view to_string(WarningLevel level) noexcept {
  return level == WarningLevel::yellow ? "yellow" : "red";
}

}  // namespace onestop
