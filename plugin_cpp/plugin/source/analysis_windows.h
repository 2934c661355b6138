// The audio windows the plugin's sidecar link sends (realtime/sidecar_link/analysis.py): the engine's analysis copy
// resampled to the protocol's analysis rate, the newest window_s seconds every hop_s seconds. Link thread only.
#pragma once

#include <soxr.h>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sidecar_protocol.h"

namespace idaw::plugin::sidecar {

/// Streaming resampling to the analysis rate with libsoxr's HQ recipe: what the Python host's soxr.ResampleStream
/// does, so the plugin and the Python host send the sidecar the same windows (flat to 91 % of the new Nyquist, where
/// the audio encoder's bands end).
class Decimator {
  public:
    /// From `in_rate` to `out_rate` (<= in_rate) Hz; false (and no output later) when libsoxr refuses the rates.
    bool prepare(double in_rate, double out_rate);
    /// Appends the output for `n` more input samples to `out` (non-finite input samples count as 0).
    void process(const float* in, std::size_t n, std::vector<float>& out);

  private:
    struct Deleter {
        void operator()(soxr_t s) const { soxr_delete(s); }
    };
    std::unique_ptr<struct soxr, Deleter> soxr_;
    std::vector<float> input_;
    double ratio_ = 1.0;
    bool pass_ = true;
};

/// realtime/sidecar_link/analysis.py WindowMaker: the newest window_s seconds every hop_s seconds.
class Windows {
  public:
    /// Sizes for an engine at `engine_rate` Hz and the protocol's analysis settings.
    void prepare(int engine_rate, const Schema& schema);
    /// Feeds engine-rate samples; true (with start and samples) when a hop completed.
    bool feed(const float* in, std::size_t n, std::uint64_t& start, std::vector<float>& window);
    /// The analysis rate (Hz).
    int rate() const { return rate_; }

  private:
    Decimator decimator_;
    std::vector<float> buffer_, scratch_;
    std::size_t window_n_ = 0, hop_n_ = 1, since_hop_ = 0;
    std::uint64_t total_out_ = 0;
    int rate_ = 0;
};

}  // namespace idaw::plugin::sidecar
