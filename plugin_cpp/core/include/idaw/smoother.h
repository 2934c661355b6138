// Linear parameter ramps: the engine's defence against zipper noise.
#pragma once

#include <cmath>

namespace idaw {

/// A value that moves to its target in a fixed number of equal steps, then lands on it exactly.
class LinearRamp {
  public:
    /// Jumps to `value` with no ramp. Real-time safe.
    void snap(double value) noexcept {
        current_ = target_ = value;
        step_ = 0.0;
        remaining_ = 0;
    }
    /// Starts a ramp from the current value to `target` over `steps` steps (>= 1). Real-time safe.
    void ramp_to(double target, int steps) noexcept {
        if (target == target_) return;  // a repeated snapshot must not restart the ramp
        target_ = target;
        remaining_ = steps < 1 ? 1 : steps;
        step_ = (target_ - current_) / remaining_;
    }
    /// Advances `steps` steps and returns the new value. Real-time safe.
    double advance(int steps = 1) noexcept {
        if (remaining_ == 0) return current_;
        if (steps >= remaining_) {
            current_ = target_;  // land exactly, so settled values compare equal to their targets
            remaining_ = 0;
        } else {
            current_ += step_ * steps;
            remaining_ -= steps;
        }
        return current_;
    }
    /// Value now. Real-time safe.
    double value() const noexcept { return current_; }
    /// Value the ramp is heading to. Real-time safe.
    double target() const noexcept { return target_; }
    /// True while a ramp is under way. Real-time safe.
    bool ramping() const noexcept { return remaining_ != 0; }

  private:
    double current_ = 0.0, target_ = 0.0, step_ = 0.0;
    int remaining_ = 0;
};

/// Decibels to linear gain; exactly 1 at 0 dB so a neutral setting is bit-transparent.
inline double db_to_gain(double db) noexcept { return db == 0.0 ? 1.0 : std::pow(10.0, db / 20.0); }

}  // namespace idaw
