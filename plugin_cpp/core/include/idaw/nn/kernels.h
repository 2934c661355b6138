// The numeric kernels of the network runtime (matrix-vector product, activations), one set per instruction set,
// picked once at load time from what the CPU supports: AVX2+FMA when present, SSE2 (every x86-64) otherwise.
#pragma once

namespace idaw::nn {

/// Instruction sets the kernels are built for. Auto: the best this CPU supports.
enum class Isa { Auto, Sse2, Avx2 };

/// Rows per panel of a packed matrix (see PackedMatrix).
inline constexpr int kPanelRows = 8;
/// Floats per column chunk of a packed matrix; vectors handed to the kernels are padded to a multiple of this.
inline constexpr int kChunk = 8;

/// One implementation of every kernel. All are real-time safe: no allocation, locks or system calls.
struct Kernels {
    /// "avx2+fma", "sse2" or "scalar".
    const char* name;
    /// The instruction set this set was built for.
    Isa isa;
    /// y[0, 8 * panels) = W x (+ bias when not null) for a packed matrix of `panels` panels of `chunks` chunks;
    /// x holds 8 * chunks floats.
    void (*matvec)(const float* packed, const float* x, const float* bias, float* y, int panels, int chunks) noexcept;
    /// v[i] = tanh(v[i]) for i < n (absolute error below 3e-7).
    void (*tanh)(float* v, int n) noexcept;
    /// v[i] = 1 / (1 + exp(-v[i])) for i < n (absolute error below 3e-7).
    void (*sigmoid)(float* v, int n) noexcept;
    /// v[i] = exp(v[i]) for i < n (relative error below 3e-7; inputs clamped to +-88.37).
    void (*exp)(float* v, int n) noexcept;
};

/// The best set this CPU supports. The first call probes the CPU (set IDAW_NN_ISA=sse2 to force the baseline);
/// call it off the audio thread, e.g. while loading.
const Kernels& best_kernels() noexcept;

/// The set built for `isa`, or null when this CPU or build lacks it; Auto gives best_kernels().
const Kernels* kernels_for(Isa isa) noexcept;

}  // namespace idaw::nn
