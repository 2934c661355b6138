#include "idaw/portaudio_bridge.h"

#include <algorithm>
#include <cstring>

namespace idaw {

PortAudioBridge::PortAudioBridge(Engine& engine, int input_channels, int output_channels)
    : engine_(engine), in_channels_(input_channels), out_channels_(output_channels) {}

int PortAudioBridge::on_callback(const float* input, float* output, unsigned long frames,
                                 unsigned long status_flags) noexcept {
    if (status_flags & kPaInputUnderflow) in_under_.fetch_add(1, std::memory_order_relaxed);
    if (status_flags & kPaInputOverflow) in_over_.fetch_add(1, std::memory_order_relaxed);
    if (status_flags & kPaOutputUnderflow) out_under_.fetch_add(1, std::memory_order_relaxed);
    if (status_flags & kPaOutputOverflow) out_over_.fetch_add(1, std::memory_order_relaxed);
    if (status_flags & (kPaInputUnderflow | kPaInputOverflow | kPaOutputUnderflow | kPaOutputOverflow))
        xruns_.fetch_add(1, std::memory_order_relaxed);

    const std::size_t out_ch = static_cast<std::size_t>(out_channels_);
    if (input != nullptr && in_channels_ == out_channels_) {
        if (output != input) std::memcpy(output, input, sizeof(float) * frames * out_ch);
    } else {
        // Output channel c takes input channel min(c, last): mono in feeds every output.
        for (unsigned long i = 0; i < frames; ++i)
            for (std::size_t c = 0; c < out_ch; ++c)
                output[i * out_ch + c] =
                    input ? input[i * in_channels_ + std::min<std::size_t>(c, in_channels_ - 1)] : 0.0f;
    }
    engine_.process_interleaved(output, out_channels_, static_cast<int>(frames));
    frames_.fetch_add(frames, std::memory_order_relaxed);
    last_frames_.store(frames, std::memory_order_relaxed);
    callbacks_.fetch_add(1, std::memory_order_release);
    return 0;  // paContinue
}

BridgeCounters PortAudioBridge::counters() const noexcept {
    BridgeCounters k;
    k.callbacks = callbacks_.load(std::memory_order_acquire);
    k.frames = frames_.load(std::memory_order_relaxed);
    k.xruns = xruns_.load(std::memory_order_relaxed);
    k.input_underflows = in_under_.load(std::memory_order_relaxed);
    k.input_overflows = in_over_.load(std::memory_order_relaxed);
    k.output_underflows = out_under_.load(std::memory_order_relaxed);
    k.output_overflows = out_over_.load(std::memory_order_relaxed);
    k.last_callback_frames = last_frames_.load(std::memory_order_relaxed);
    return k;
}

}  // namespace idaw

extern "C" int idaw_portaudio_callback(const void* input, void* output, unsigned long frame_count,
                                       const void* /*time_info*/, unsigned long status_flags, void* user_data) {
    auto* bridge = static_cast<idaw::PortAudioBridge*>(user_data);
    return bridge->on_callback(static_cast<const float*>(input), static_cast<float*>(output), frame_count,
                               status_flags);
}
