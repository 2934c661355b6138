// Keys, scales and chords for the MIDI generator: which pitches a key allows, the nets' 64 chord classes, voicings.
// Everything here is constexpr or plain arithmetic: real-time safe, no allocation.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace idaw::music {

/// One scale: its name and which pitch classes above the tonic it holds (bit k = k semitones up).
struct ScaleSpec {
    std::string_view name;
    std::uint16_t mask;
};

/// Bit mask of a list of pitch classes.
constexpr std::uint16_t pc_mask(std::initializer_list<int> pcs) noexcept {
    std::uint16_t m = 0;
    for (int pc : pcs) m = static_cast<std::uint16_t>(m | (1u << pc));
    return m;
}

/// The scales a key may have, by index (the index is what MidiControl::scale holds). Names are what `--key`
/// accepts after the colon (e.g. "A:minor").
inline constexpr std::array<ScaleSpec, 12> kScales{{
    {"major", pc_mask({0, 2, 4, 5, 7, 9, 11})},
    {"minor", pc_mask({0, 2, 3, 5, 7, 8, 10})},  // natural minor (aeolian)
    {"harmonic_minor", pc_mask({0, 2, 3, 5, 7, 8, 11})},
    {"melodic_minor", pc_mask({0, 2, 3, 5, 7, 9, 11})},
    {"dorian", pc_mask({0, 2, 3, 5, 7, 9, 10})},
    {"phrygian", pc_mask({0, 1, 3, 5, 7, 8, 10})},
    {"lydian", pc_mask({0, 2, 4, 6, 7, 9, 11})},
    {"mixolydian", pc_mask({0, 2, 4, 5, 7, 9, 10})},
    {"locrian", pc_mask({0, 1, 3, 5, 6, 8, 10})},
    {"major_pentatonic", pc_mask({0, 2, 4, 7, 9})},
    {"minor_pentatonic", pc_mask({0, 3, 5, 7, 10})},
    {"blues", pc_mask({0, 3, 5, 6, 7, 10})},
}};
inline constexpr int kNumScales = static_cast<int>(kScales.size());

/// A key: tonic pitch class (0 = C .. 11 = B) and an index into kScales.
struct Key {
    int tonic = 0;
    int scale = 0;
};

/// Pitch class of any MIDI pitch (0..11).
constexpr int pitch_class(int pitch) noexcept { return ((pitch % 12) + 12) % 12; }

/// The key's pitch classes as an absolute mask (bit pc set when pitch class pc is in the key).
constexpr std::uint16_t key_mask(Key key) noexcept {
    const std::uint32_t rel = kScales[static_cast<std::size_t>(key.scale)].mask;
    const int t = pitch_class(key.tonic);
    return static_cast<std::uint16_t>(((rel << t) | (rel >> (12 - t))) & 0xFFFu);
}

/// True when `pitch` belongs to the key.
constexpr bool in_key(int pitch, Key key) noexcept { return (key_mask(key) >> pitch_class(pitch)) & 1u; }

/// True when the scale has a minor third above the tonic and no major third (the nets' "minor" mode flag).
constexpr bool key_is_minor(Key key) noexcept {
    const std::uint16_t m = kScales[static_cast<std::size_t>(key.scale)].mask;
    return (m & (1u << 3)) != 0 && (m & (1u << 4)) == 0;
}

// ---- Chord classes: index = quality * 12 + root (0..59), 60 = N, 61 = X, 62-63 reserved (realtime/nets/README.md)

/// Chord qualities in class order.
enum class ChordQuality : std::uint8_t { Maj, Min, Dom7, Dim, Aug };
inline constexpr int kNumChordQualities = 5;
inline constexpr int kNumChordClasses = 64;
inline constexpr int kNoChord = 60;     ///< N: no chord
inline constexpr int kOtherChord = 61;  ///< X: other (never chosen by the generator)
/// Notes of the largest voicing: the bass plus up to four chord tones.
inline constexpr int kMaxChordVoices = 5;
/// Bass notes of voicings lie in [kBassLow, kBassLow + 11]; the other chord tones in [kChordLow, kChordLow + 11].
inline constexpr int kBassLow = 36;
inline constexpr int kChordLow = 48;

/// Intervals above the root, per quality (mask, as kScales).
inline constexpr std::array<std::uint16_t, kNumChordQualities> kChordIntervals{
    pc_mask({0, 4, 7}), pc_mask({0, 3, 7}), pc_mask({0, 4, 7, 10}), pc_mask({0, 3, 6}), pc_mask({0, 4, 8})};

/// True for the classes 0..59 (a root and a quality).
constexpr bool is_pitched_chord(int chord) noexcept { return chord >= 0 && chord < kNoChord; }
/// Root pitch class of a pitched chord class.
constexpr int chord_root(int chord) noexcept { return chord % 12; }
/// Quality of a pitched chord class.
constexpr ChordQuality chord_quality(int chord) noexcept { return static_cast<ChordQuality>(chord / 12); }

/// Absolute pitch-class mask of a pitched chord class (0 for N, X and reserved classes).
constexpr std::uint16_t chord_mask(int chord) noexcept {
    if (!is_pitched_chord(chord)) return 0;
    const std::uint32_t rel = kChordIntervals[static_cast<std::size_t>(chord / 12)];
    const int r = chord_root(chord);
    return static_cast<std::uint16_t>(((rel << r) | (rel >> (12 - r))) & 0xFFFu);
}

/// True when every tone of the chord belongs to the key (N counts as fitting any key).
constexpr bool chord_in_key(int chord, Key key) noexcept {
    if (chord == kNoChord) return true;
    if (!is_pitched_chord(chord)) return false;
    const std::uint16_t c = chord_mask(chord);
    return (c & key_mask(key)) == c;
}

/// The most probable chord among those that fit the key, from the HarmonyPredictor's 64 probabilities: classes
/// 0..59 whose tones all lie in the key, and N. X and the reserved classes are never chosen; NaN counts as 0.
/// Returns kNoChord when nothing beats it. Real-time safe.
inline int choose_chord(const float* probs, Key key) noexcept {
    int best = kNoChord;
    float best_p = probs[kNoChord] == probs[kNoChord] ? probs[kNoChord] : 0.0f;
    for (int c = 0; c < kNoChord; ++c) {
        const float p = probs[c];
        if (p > best_p && chord_in_key(c, key)) {
            best = c;
            best_p = p;
        }
    }
    return best;
}

/// Writes the voicing of a pitched chord class into `out` (ascending MIDI pitches) and returns how many: the root in
/// the bass octave [kBassLow, kBassLow + 11], then every chord tone once in [kChordLow, kChordLow + 11]. The two
/// octaves never overlap the melody's range, so one channel can carry both. Returns 0 for N, X and reserved.
inline int voice_chord(int chord, int* out) noexcept {
    if (!is_pitched_chord(chord)) return 0;
    int n = 0;
    out[n++] = kBassLow + chord_root(chord);
    const std::uint16_t mask = chord_mask(chord);
    for (int pc = 0; pc < 12; ++pc)
        if ((mask >> pc) & 1u) out[n++] = kChordLow + pc;
    return n;
}

}  // namespace idaw::music
