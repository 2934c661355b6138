// The MIDI generator's music-theory layer: it filters and repairs the nets' choices so that the music establishes
// its key, moves by functional progressions, cadences at phrase ends and leads its voices. Design: docs/MIDI.md,
// "Theory layer". Everything here is plain arithmetic over fixed-size arrays: real-time safe, no allocation.
//
// Phrases. Bars count from the start of the grid, four to a phrase. Phrases alternate: an even phrase ends on a
// half cadence (its last bar is V, the bar before it a pre-dominant), an odd one on an authentic cadence (its bars
// 1-3 are pre-dominant, V or V7, I), so every 8-bar period closes on the tonic. The first bar is the tonic.
//
// Chords. In a functional key (major; natural, harmonic or melodic minor) each bar's chord is one of the eight
// chords of idaw/progression_table.h that the bar's role allows, scored by the net's log probability plus the
// corpus's log P(chord | previous chord) (and P(next | chord) where the next bar's chord is fixed), plus the
// design document's rules (V -> I strong, ii - V - I, I - vi - IV - V). Other scales (church modes, pentatonic,
// blues) keep the net's own in-scale choice: there is no cadence formula to impose on them.
//
// Voicing. Four voices: the bass (the root, nearest the previous bass) and three upper voices (a triad's three
// tones; a seventh chord's root, third and seventh). Among all positions of the upper voices in their range, the
// one with no parallel fifths or octaves between any two of the four voices and the least total motion wins.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "idaw/music_theory.h"
#include "idaw/progression_table.h"

namespace idaw::music {

inline constexpr int kBarsPerPhrase = 4;
/// Where the bass and the upper voices lie.
struct VoiceRanges {
    int bass_low, bass_high;    ///< the bass: each bar's root, and its walk
    int upper_low, upper_high;  ///< the three upper voices (about 19 semitones: room to move without parallels)
};
/// The chords on their own channel (they may reach into the melody's range).
inline constexpr VoiceRanges kSeparateRanges{33, 47, 48, 67};
/// The chords on the melody's channel: everything below kMelodyLow (60), so that no key is shared.
inline constexpr VoiceRanges kSharedRanges{28, 39, 40, 59};
inline constexpr int kUpperLow = kSeparateRanges.upper_low;
inline constexpr int kUpperHigh = kSeparateRanges.upper_high;
inline constexpr int kBassFloor = kSeparateRanges.bass_low;
/// Log weight of a chord held over from the previous bar (the corpus table counts changes only).
inline constexpr float kRepeatLog = -1.5f;
/// Log bonus of a tonic-function chord (I, vi, iii) at a phrase start.
inline constexpr float kPhraseStartTonic = 1.0f;
/// Weight of the corpus prior against the net's log probability.
inline constexpr float kPriorWeight = 1.0f;

/// True for keys whose harmony the layer makes functional: major and the three minors (kScales 0..3).
constexpr bool is_functional(Key key) noexcept { return key.scale >= 0 && key.scale <= 3; }
/// 0 for major keys, 1 for minor ones (the table's mode index).
constexpr int mode_of(Key key) noexcept { return key_is_minor(key) ? 1 : 0; }

/// Chord class (quality * 12 + root) of functional chord `index` in `key`.
constexpr int functional_class(Key key, int index) noexcept {
    const FunctionalChord& c =
        kFunctionalChordSet[static_cast<std::size_t>(mode_of(key))][static_cast<std::size_t>(index)];
    return static_cast<int>(c.quality) * 12 + pitch_class(key.tonic + c.degree);
}

/// Index of a chord class among the key's functional chords, or -1.
constexpr int functional_index(Key key, int chord) noexcept {
    for (int i = 0; i < kFunctionalChords; ++i)
        if (functional_class(key, i) == chord) return i;
    return -1;
}

/// What a bar does in its phrase.
enum class BarRole : std::uint8_t {
    Opening,           ///< the first bar: the tonic
    Free,              ///< any functional chord
    PreDominant,       ///< ii, IV (iio, iv in minor) or vi (VI)
    Dominant,          ///< V or V7, before an authentic cadence
    HalfCadence,       ///< V, ending an even phrase
    AuthenticCadence,  ///< I, ending an odd phrase
};

/// The role of bar `bar` (counted from the grid's start).
constexpr BarRole bar_role(std::uint64_t bar) noexcept {
    if (bar == 0) return BarRole::Opening;
    const int in_phrase = static_cast<int>(bar % kBarsPerPhrase);
    const bool authentic = (bar / kBarsPerPhrase) % 2 == 1;
    if (in_phrase == 3) return authentic ? BarRole::AuthenticCadence : BarRole::HalfCadence;
    if (in_phrase == 2) return authentic ? BarRole::Dominant : BarRole::PreDominant;
    if (in_phrase == 1 && authentic) return BarRole::PreDominant;
    return BarRole::Free;
}

/// True when functional chord `index` may stand in a bar with `role`.
constexpr bool role_allows(BarRole role, int index) noexcept {
    switch (role) {
        case BarRole::Opening:
        case BarRole::AuthenticCadence:
            return index == kTonic;
        case BarRole::Free:
            return true;
        case BarRole::PreDominant:
            return index == kSupertonic || index == kSubdominant || index == kSubmediant;
        case BarRole::Dominant:
            return index == kDominant || index == kDominantSeventh;
        case BarRole::HalfCadence:
            return index == kDominant;
    }
    return false;
}

/// The chord a fixed role asks for (kTonic or kDominant), or -1 when the role leaves a choice.
constexpr int role_chord(BarRole role) noexcept {
    switch (role) {
        case BarRole::Opening:
        case BarRole::AuthenticCadence:
            return kTonic;
        case BarRole::HalfCadence:
        case BarRole::Dominant:  // V stands for the pair (V7 follows the same way)
            return kDominant;
        default:
            return -1;
    }
}

/// The design document's rules on top of the corpus: V -> I strong, ii - V - I, I - vi - IV - V.
constexpr float rule_bonus(int from, int to) noexcept {
    if ((from == kDominant || from == kDominantSeventh) && to == kTonic) return 1.0f;
    if ((from == kSupertonic || from == kSubdominant) && (to == kDominant || to == kDominantSeventh)) return 0.5f;
    if ((from == kTonic && to == kSubmediant) || (from == kSubmediant && to == kSubdominant)) return 0.5f;
    if (from == kSubmediant && to == kSupertonic) return 0.3f;
    return 0.0f;
}

/// log P(to | from) in the key's mode (kRepeatLog for a repeat), plus the rule bonus.
inline float progression_score(Key key, int from, int to) noexcept {
    if (from == to) return kRepeatLog;
    return kProgressionLog[mode_of(key)][from][to] + rule_bonus(from, to);
}

/// The layer's chord for a bar: `probs` are the HarmonyPredictor's 64 class probabilities, `previous` the previous
/// bar's chord class (or -1). Returns a chord class; for non-functional keys the net's own choice_chord(). NaN
/// probabilities count as 0.
inline int theory_chord(const float* probs, Key key, std::uint64_t bar, int previous) noexcept {
    if (!is_functional(key)) return choose_chord(probs, key);
    const BarRole role = bar_role(bar);
    const int prev_index = functional_index(key, previous);
    const int next_fixed = role_chord(bar_role(bar + 1));
    int best = -1;
    float best_score = -1e30f;
    for (int i = 0; i < kFunctionalChords; ++i) {
        if (!role_allows(role, i)) continue;
        const int chord = functional_class(key, i);
        const float p = probs[chord];
        float score = std::log(p > 1e-4f ? p : 1e-4f);  // also catches NaN
        if (prev_index >= 0) score += kPriorWeight * progression_score(key, prev_index, i);
        if (next_fixed >= 0 && role_chord(role) < 0) score += kPriorWeight * progression_score(key, i, next_fixed);
        // A phrase starts on a tonic-function chord where the net allows.
        if (bar % kBarsPerPhrase == 0 &&
            kFunctionalChordSet[static_cast<std::size_t>(mode_of(key))][static_cast<std::size_t>(i)].function == 'T')
            score += kPhraseStartTonic;
        if (score > best_score) {
            best_score = score;
            best = chord;
        }
    }
    return best;
}

/// The pitch classes the melody may use while `chord` sounds. In a functional key: the key's, plus the chord's tones
/// (a minor key's chords come from the natural minor with the dominants of the harmonic minor, whatever minor scale
/// was asked), less the other form of a chord's sixth or seventh degree (no A natural over F minor, no G over E
/// major in A minor: no cross relation). Other keys: the key's pitch classes.
constexpr std::uint16_t melody_mask(Key key, int chord) noexcept {
    std::uint16_t mask = key_mask(key);
    if (!is_functional(key) || !is_pitched_chord(chord)) return mask;
    const std::uint16_t tones = chord_mask(chord);
    mask = static_cast<std::uint16_t>(mask | tones);
    const int t = pitch_class(key.tonic);
    for (int lowered : {8, 10}) {  // b6 against 6, b7 against 7
        const int flat = pitch_class(t + lowered), natural = pitch_class(t + lowered + 1);
        if ((tones >> flat) & 1u) mask = static_cast<std::uint16_t>(mask & ~(1u << natural));
        if ((tones >> natural) & 1u) mask = static_cast<std::uint16_t>(mask & ~(1u << flat));
    }
    return mask;
}

/// Every pitch class the layer may play in `key`: the union of melody_mask() over the key's chords.
constexpr std::uint16_t theory_key_mask(Key key) noexcept {
    std::uint16_t mask = key_mask(key);
    if (is_functional(key))
        for (int i = 0; i < kFunctionalChords; ++i)
            mask = static_cast<std::uint16_t>(mask | chord_mask(functional_class(key, i)));
    return mask;
}

/// True when a chord's tones all lie in melody_mask(key, chord) (the layer's chords always do).
constexpr bool chord_fits(int chord, Key key) noexcept {
    if (chord == kNoChord) return true;
    const std::uint16_t c = chord_mask(chord);
    return is_pitched_chord(chord) && (c & melody_mask(key, chord)) == c;
}

/// True when two voices moving from (a0, b0) to (a1, b1) make parallel fifths or octaves: both move, the same way,
/// between two perfect fifths or two octaves/unisons (compound intervals included).
constexpr bool parallel_perfect(int a0, int b0, int a1, int b1) noexcept {
    if (a0 < 0 || b0 < 0 || a1 < 0 || b1 < 0) return false;
    const int da = a1 - a0, db = b1 - b0;
    if (da == 0 || db == 0 || (da > 0) != (db > 0)) return false;
    const int before = std::abs(a0 - b0) % 12, after = std::abs(a1 - b1) % 12;
    return before == after && (before == 0 || before == 7);
}

/// Four voices: the bass and three upper voices, ascending (count 0 = no chord).
struct Voicing {
    int bass = -1;
    int upper[3] = {-1, -1, -1};
    int count = 0;  ///< 0 or 3 upper voices
};

/// The upper voices' pitch classes of a pitched chord: a triad's tones, a seventh chord's root, third and seventh.
inline int upper_tones(int chord, int* pcs) noexcept {
    const int root = chord_root(chord);
    switch (chord_quality(chord)) {
        case ChordQuality::Maj:
            pcs[0] = root, pcs[1] = root + 4, pcs[2] = root + 7;
            break;
        case ChordQuality::Min:
            pcs[0] = root, pcs[1] = root + 3, pcs[2] = root + 7;
            break;
        case ChordQuality::Dom7:
            pcs[0] = root, pcs[1] = root + 4, pcs[2] = root + 10;
            break;
        case ChordQuality::Dim:
            pcs[0] = root, pcs[1] = root + 3, pcs[2] = root + 6;
            break;
        case ChordQuality::Aug:
            pcs[0] = root, pcs[1] = root + 4, pcs[2] = root + 8;
            break;
    }
    for (int i = 0; i < 3; ++i) pcs[i] = pitch_class(pcs[i]);
    return 3;
}

/// Parallel fifths and octaves between any two of the four voices moving from `a` to `b`.
inline int voicing_parallels(const Voicing& a, const Voicing& b) noexcept {
    if (a.count == 0 || b.count == 0) return 0;
    const int pa[4] = {a.bass, a.upper[0], a.upper[1], a.upper[2]};
    const int pb[4] = {b.bass, b.upper[0], b.upper[1], b.upper[2]};
    int n = 0;
    for (int i = 0; i < 4; ++i)
        for (int j = i + 1; j < 4; ++j) n += parallel_perfect(pa[i], pa[j], pb[i], pb[j]) ? 1 : 0;
    return n;
}

/// Voices `chord` after `previous` (count 0: none before) within `ranges` (kSeparateRanges or kSharedRanges): see
/// the file comment. Returns count 0 for N and X.
inline Voicing lead_voices(int chord, const Voicing& previous, const VoiceRanges& ranges) noexcept {
    Voicing best;
    if (!is_pitched_chord(chord)) return best;
    const int root = chord_root(chord);
    // The bass: the root nearest the previous bass (or in the range's top octave at the start).
    int bass = ranges.bass_high - pitch_class(ranges.bass_high - root);
    if (previous.count > 0) {
        for (int b = ranges.bass_low; b <= ranges.bass_high; ++b)
            if (pitch_class(b) == root && std::abs(b - previous.bass) < std::abs(bass - previous.bass)) bass = b;
    }
    const int upper_high = ranges.upper_high;
    int pcs[3];
    upper_tones(chord, pcs);
    long best_cost = -1;
    Voicing v;
    v.bass = bass;
    v.count = 3;
    for (int low = ranges.upper_low; low <= upper_high; ++low) {
        const int pc0 = pitch_class(low);
        if (pc0 != pcs[0] && pc0 != pcs[1] && pc0 != pcs[2]) continue;
        for (int mid = low + 1; mid <= low + 12 && mid <= upper_high; ++mid) {
            const int pc1 = pitch_class(mid);
            if (pc1 == pc0 || (pc1 != pcs[0] && pc1 != pcs[1] && pc1 != pcs[2])) continue;
            for (int high = mid + 1; high <= mid + 12 && high <= upper_high; ++high) {
                const int pc2 = pitch_class(high);
                if (pc2 == pc0 || pc2 == pc1 || (pc2 != pcs[0] && pc2 != pcs[1] && pc2 != pcs[2])) continue;
                v.upper[0] = low, v.upper[1] = mid, v.upper[2] = high;
                long cost = 0;
                if (previous.count > 0) {
                    for (int i = 0; i < 3; ++i) cost += std::abs(v.upper[i] - previous.upper[i]);
                    cost += 1000L * voicing_parallels(previous, v);
                } else {
                    // Close position, around the middle of the range.
                    cost = std::abs(low + mid + high - 3 * (ranges.upper_low + upper_high) / 2) + (high - low);
                }
                if (best_cost < 0 || cost < best_cost) {
                    best_cost = cost;
                    best = v;
                }
            }
        }
    }
    return best;
}

}  // namespace idaw::music
