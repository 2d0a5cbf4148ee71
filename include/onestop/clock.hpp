#pragma once

// Where the engine gets "now". The core never reads a clock: the Engine asks
// its Clock and passes the instant in. Tests and the simulator use a
// ManualClock; production uses the system clock.

#include <chrono>
#include <memory>

namespace onestop {

// UTC instants with one-second resolution, everywhere.
using Instant = std::chrono::sys_seconds;

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
