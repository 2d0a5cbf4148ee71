#pragma once

// Where the engine gets "now". The core never reads a clock: the Engine asks
// its Clock and passes the instant in. Tests and the simulator use a
// ManualClock; production uses the system clock.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace onestop {

// UTC instants with one-second resolution, everywhere.
using Instant = std::chrono::sys_seconds;

// An ISO 8601 instant with its offset: "2025-03-03T09:00:00+08:00" (seconds
// optional; a space for the T works too; Z, or an offset of at most 14:00).
// nullopt for anything else, an impossible date or time included.
std::optional<Instant> parse_instant(std::string_view text);

// A calendar date "2025-03-03" (ISO 8601, four-digit year). nullopt for
// anything else, an impossible date included.
std::optional<std::chrono::year_month_day> parse_date(std::string_view text);

// A local date and time with no offset, "2025-03-03T09:00" (seconds
// optional; a space for the T works too); with `date_alone`, a date by
// itself too ("2025-03-03": its midnight). nullopt for anything else.
std::optional<std::chrono::local_seconds> parse_local_time(std::string_view text, bool date_alone = false);

// "2025-03-03" (four digits of year: what parse_date reads back, for the
// years 0000-9999).
std::string format_date(std::chrono::year_month_day date);

// A source of the current instant. Implementations must be safe for
// concurrent calls.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant now() const = 0;
};

// The system's wall clock.
std::shared_ptr<Clock> make_system_clock();

// A clock that only moves when told to (tests, simulation).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Instant start = Instant{}) : now_(start) {}
  Instant now() const override { return now_; }
  void set(Instant t) { now_ = t; }
  void advance(std::chrono::seconds d) { now_ += d; }

 private:
  Instant now_;
};

}  // namespace onestop
