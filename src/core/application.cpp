#include "core/application.hpp"

#include <algorithm>
#include <charconv>

namespace onestop::core {

namespace {

int digits(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Whole years on the Beijing date at `now` (birth dates in resident IDs are
// Beijing dates, as pre-review's check of a birth date in the future
// reads them); `beijing` false: on the UTC date, as the first engine rules
// did (CaseSnapshot::rules).
Value age_of(const Applicant& a, Instant now, bool beijing) {
  if (a.kind != ApplicantKind::natural_person || a.id.size() != 18) return Value();
  const std::string_view id = a.id;
  const int y = digits(id.substr(6, 4));
  const int m = digits(id.substr(10, 2));
  const int d = digits(id.substr(12, 2));
  const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(now + std::chrono::hours(beijing ? 8 : 0))};
  int age = static_cast<int>(today.year()) - y;
  const int mm = static_cast<int>(static_cast<unsigned>(today.month()));
  const int dd = static_cast<int>(static_cast<unsigned>(today.day()));
  if (mm < m || (mm == m && dd < d)) --age;
  return Value(static_cast<double>(age));
}

Value region_of(const Applicant& a) {
  if (a.id.size() != 18) return Value();
  return Value(a.kind == ApplicantKind::natural_person ? a.id.substr(0, 6) : a.id.substr(2, 6));
}

}  // namespace

void merge_materials(std::vector<OfferedMaterial>& into, const std::vector<OfferedMaterial>& given) {
  for (const auto& m : given) {
    auto it = std::find_if(into.begin(), into.end(), [&](const OfferedMaterial& x) { return x.id == m.id; });
    if (it == into.end()) {
      into.push_back(m);
    } else {
      *it = m;
    }
  }
}

Value application_field(std::string_view path, const std::map<std::string, Value>& form, const Applicant& applicant,
                        Instant now, bool beijing_age) {
  if (path.substr(0, 5) == "form.") {
    auto it = form.find(std::string(path.substr(5)));
    return it == form.end() ? Value() : it->second;
  }
  if (path == "applicant.kind") return Value(std::string(to_string(applicant.kind)));
  if (path == "applicant.id") return Value(applicant.id);
  if (path == "applicant.name") return Value(applicant.name);
  if (path == "applicant.age") return age_of(applicant, now, beijing_age);
  if (path == "applicant.region") return region_of(applicant);
  return Value();
}

MaterialListing material_listing(std::string_view id, const std::vector<const Item*>& items) {
  MaterialListing out;
  // Those taking it from the applicant; when none does, every listing
  // (what suits them is still what a host offering it would give).
  std::vector<const Material*> defs;
  std::vector<const Material*> all;
  for (const Item* it : items) {
    const Material* m = it->find_material(id);
    if (m == nullptr) continue;
    all.push_back(m);
    if (m->source == MaterialSource::applicant) defs.push_back(m);
  }
  out.listed = !all.empty();
  out.from_applicant = !defs.empty();
  for (const Material* m : defs) out.required = out.required || m->necessity == Necessity::required;
  if (defs.empty()) defs = std::move(all);
  for (const Material* m : defs) {
    if (m->max_bytes > 0 && (out.max_bytes == 0 || m->max_bytes < out.max_bytes)) out.max_bytes = m->max_bytes;
    if (m->form == MaterialForm::electronic || m->form == MaterialForm::original_and_copy) {
      out.form = m->form;
    } else if (m->form == MaterialForm::original && out.form == MaterialForm::copy) {
      out.form = MaterialForm::original;
    }
    for (const auto& type : m->file_types) {
      const bool everyone = std::all_of(defs.begin(), defs.end(), [&](const Material* o) {
        return o->file_types.empty() || std::find(o->file_types.begin(), o->file_types.end(), type) != o->file_types.end();
      });
      if (everyone && out.file_type.empty()) out.file_type = type;
    }
  }
  for (const Material* m : defs) {
    if (out.file_type.empty() && !m->file_types.empty()) out.file_type = m->file_types.front();
  }
  if (out.file_type.empty()) out.file_type = "pdf";
  return out;
}

}  // namespace onestop::core
