#include "analysis_windows.h"

#include <algorithm>
#include <cmath>

namespace idaw::plugin::sidecar {

bool Decimator::prepare(double in_rate, double out_rate) {
    soxr_.reset();
    pass_ = std::abs(in_rate - out_rate) < 1e-9;
    ratio_ = out_rate / in_rate;
    if (pass_) return true;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t error = nullptr;
    soxr_.reset(soxr_create(in_rate, out_rate, 1, &error, &io, &quality, nullptr));
    if (error != nullptr) soxr_.reset();
    return soxr_ != nullptr;
}

void Decimator::process(const float* in, std::size_t n, std::vector<float>& out) {
    input_.assign(in, in + n);
    for (float& x : input_)
        if (!std::isfinite(x)) x = 0.0f;
    if (pass_) {
        out.insert(out.end(), input_.begin(), input_.end());
        return;
    }
    if (!soxr_) return;
    std::size_t offset = 0;
    while (offset < n) {
        const std::size_t begin = out.size();
        out.resize(begin + static_cast<std::size_t>(std::ceil(static_cast<double>(n - offset) * ratio_)) + 64);
        std::size_t used = 0, produced = 0;
        if (soxr_process(soxr_.get(), input_.data() + offset, n - offset, &used, out.data() + begin, out.size() - begin,
                         &produced) != nullptr) {
            out.resize(begin);
            return;
        }
        out.resize(begin + produced);
        offset += used;
        if (used == 0 && produced == 0) return;
    }
}

void Windows::prepare(int engine_rate, const Schema& schema) {
    rate_ = std::min(static_cast<int>(schema.analysis("rate")), engine_rate);
    window_n_ = static_cast<std::size_t>(rate_ * schema.analysis("window_s"));
    hop_n_ = std::max<std::size_t>(1, static_cast<std::size_t>(rate_ * schema.analysis("hop_s")));
    decimator_.prepare(engine_rate, rate_);
    buffer_.clear();
    scratch_.clear();
}

bool Windows::feed(const float* in, std::size_t n, std::uint64_t& start, std::vector<float>& window) {
    if (n == 0) return false;
    scratch_.clear();
    decimator_.process(in, n, scratch_);
    buffer_.insert(buffer_.end(), scratch_.begin(), scratch_.end());
    if (buffer_.size() > window_n_) buffer_.erase(buffer_.begin(), buffer_.end() - static_cast<long>(window_n_));
    total_out_ += scratch_.size();
    since_hop_ += scratch_.size();
    if (since_hop_ < hop_n_ || buffer_.size() < hop_n_) return false;
    since_hop_ = 0;
    start = total_out_ - buffer_.size();
    window = buffer_;
    return true;
}

}  // namespace idaw::plugin::sidecar
