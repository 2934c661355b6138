// Runs the engine directly inside a PortAudio stream callback (no PortAudio headers needed).
#pragma once

#include <atomic>
#include <cstdint>

#include "idaw/engine.h"

namespace idaw {

/// PortAudio's status flag bits (portaudio.h, paInputUnderflow ... paPrimingOutput).
enum PortAudioStatus : unsigned long {
    kPaInputUnderflow = 0x1,
    kPaInputOverflow = 0x2,
    kPaOutputUnderflow = 0x4,
    kPaOutputOverflow = 0x8,
    kPaPrimingOutput = 0x10,
};

/// Counters of a live stream; any thread may read them.
struct BridgeCounters {
    std::uint64_t callbacks = 0;
    std::uint64_t frames = 0;
    std::uint64_t xruns = 0;  ///< callbacks that reported any under- or overflow
    std::uint64_t input_underflows = 0, input_overflows = 0, output_underflows = 0, output_overflows = 0;
    std::uint64_t last_callback_frames = 0;
};

/// The user data of the native callback: the engine plus the stream's channel layout.
class PortAudioBridge {
  public:
    /// Binds an engine (already prepared) to a stream layout. Not real-time safe.
    PortAudioBridge(Engine& engine, int input_channels, int output_channels);

    /// The callback body: maps input channels onto output channels, processes in place. Real-time safe.
    int on_callback(const float* input, float* output, unsigned long frames, unsigned long status_flags) noexcept;

    /// Counters; any thread.
    BridgeCounters counters() const noexcept;

  private:
    Engine& engine_;
    int in_channels_, out_channels_;
    std::atomic<std::uint64_t> callbacks_{0}, frames_{0}, xruns_{0}, last_frames_{0};
    std::atomic<std::uint64_t> in_under_{0}, in_over_{0}, out_under_{0}, out_over_{0};
};

}  // namespace idaw

extern "C" {
/// PaStreamCallback-compatible entry point; `user_data` is a PortAudioBridge*. Real-time safe.
int idaw_portaudio_callback(const void* input, void* output, unsigned long frame_count, const void* time_info,
                            unsigned long status_flags, void* user_data);
}
