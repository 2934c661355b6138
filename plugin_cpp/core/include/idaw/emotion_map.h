// The emotion embedding the MIDI nets read, and the one home of the (valence, arousal) -> embedding map: the
// training labels (realtime/nets/labels.py), the Python host (realtime/midi_settings.py, through idaw_core) and the
// plugin all compute it here, so the nets hear at run time exactly what they were trained on.
#pragma once

#include <array>
#include <cstddef>

namespace idaw {

/// Dimensions of the emotion embedding (realtime/nets/README.md): 0 valence, 1 arousal, 2 dominance, 3 intensity,
/// 4-11 Plutchik intensities, 12-63 free latent dims (0 when unknown).
inline constexpr int kEmotionDims = 64;
/// Index of each named dimension of the embedding.
inline constexpr std::size_t kEmotionValence = 0;
inline constexpr std::size_t kEmotionArousal = 1;
inline constexpr std::size_t kEmotionDominance = 2;
inline constexpr std::size_t kEmotionIntensity = 3;
inline constexpr std::size_t kEmotionPlutchik = 4;  ///< first of kNumPlutchik
/// Plutchik's eight basic emotions, in embedding order: joy, trust, fear, surprise, sadness, disgust, anger,
/// anticipation (realtime/nets/architectures.py PLUTCHIK).
inline constexpr std::size_t kNumPlutchik = 8;
/// Dims the map fills (0-11); the latent dims 12-63 stay 0.
inline constexpr std::size_t kEmotionMappedDims = kEmotionPlutchik + kNumPlutchik;

/// (valence, arousal) prototype point of each Plutchik emotion, in embedding order.
inline constexpr std::array<std::array<double, 2>, kNumPlutchik> kPlutchikVa{{
    {0.8, 0.5},    // joy
    {0.6, -0.4},   // trust
    {-0.6, 0.7},   // fear
    {0.1, 0.9},    // surprise
    {-0.7, -0.6},  // sadness
    {-0.7, 0.1},   // disgust
    {-0.6, 0.8},   // anger
    {0.4, 0.4},    // anticipation
}};
/// Width (standard deviation) of each prototype's Gaussian on the (valence, arousal) plane.
inline constexpr double kPlutchikWidth = 0.35;

/// The 64-d emotion embedding for a (valence, arousal) point, each clamped to [-1, 1]:
///   0 valence, 1 arousal (as clamped); 2 dominance 0 (no cue says otherwise);
///   3 intensity = 2 min(1, |(valence, arousal)| / sqrt 2) - 1;
///   4-11 each Plutchik emotion's 2p - 1, p = exp(-d^2 / (2 kPlutchikWidth^2)), d the distance to its prototype;
///   12-63 latent, 0.
/// Computed in double and rounded to float once per value (as the training labels were), every value in [-1, 1];
/// a NaN input counts as 0 (neutral). Real-time safe: no allocation, no locks.
std::array<float, kEmotionDims> emotion_from_valence_arousal(double valence, double arousal) noexcept;

}  // namespace idaw
