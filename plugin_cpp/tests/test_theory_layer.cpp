// The MIDI generator's theory layer (idaw/theory_layer.h): the phrase plan, the chord choice under it, voicings
// without parallel fifths or octaves for every pair of chords in every key, and the minor key's leading tone.
#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "idaw/theory_layer.h"

using namespace idaw::music;

namespace {

/// Net probabilities that favour one chord class (and spread a little over the rest).
std::array<float, kNumChordClasses> favouring(int chord) {
    std::array<float, kNumChordClasses> p{};
    p.fill(0.005f);
    p[static_cast<std::size_t>(chord)] = 0.7f;
    return p;
}

}  // namespace

TEST_CASE("bar roles: tonic first, half cadences end even phrases, authentic cadences odd ones") {
    CHECK(bar_role(0) == BarRole::Opening);
    CHECK(bar_role(3) == BarRole::HalfCadence);
    CHECK(bar_role(2) == BarRole::PreDominant);
    CHECK(bar_role(5) == BarRole::PreDominant);
    CHECK(bar_role(6) == BarRole::Dominant);
    CHECK(bar_role(7) == BarRole::AuthenticCadence);
    CHECK(bar_role(8) == BarRole::Free);
    CHECK(bar_role(11) == BarRole::HalfCadence);
    CHECK(bar_role(15) == BarRole::AuthenticCadence);
}

TEST_CASE("the chord follows the net where the bar is free and the plan where it is not") {
    for (int scale : {0, 1, 2, 3}) {
        for (int tonic = 0; tonic < 12; ++tonic) {
            const Key key{tonic, scale};
            CAPTURE(scale);
            CAPTURE(tonic);
            for (int favourite = 0; favourite < kFunctionalChords; ++favourite) {
                const auto probs = favouring(functional_class(key, favourite));
                int previous = -1;
                for (std::uint64_t bar = 0; bar < 16; ++bar) {
                    const int chord = theory_chord(probs.data(), key, bar, previous);
                    const int index = functional_index(key, chord);
                    REQUIRE(index >= 0);
                    CHECK(role_allows(bar_role(bar), index));
                    CHECK(chord_fits(chord, key));
                    if (bar_role(bar) == BarRole::AuthenticCadence) {
                        CHECK(index == kTonic);
                        const int before = functional_index(key, previous);
                        CHECK((before == kDominant || before == kDominantSeventh));
                    }
                    if (bar_role(bar) == BarRole::HalfCadence) CHECK(index == kDominant);
                    previous = chord;
                }
            }
            // A free bar after the tonic keeps what a confident net asks for when the corpus allows it (I -> IV).
            const auto probs = favouring(functional_class(key, kSubdominant));
            CHECK(theory_chord(probs.data(), key, 1, functional_class(key, kTonic)) ==
                  functional_class(key, kSubdominant));
        }
    }
    // Other scales keep the net's own in-scale choice.
    const Key dorian{2, 4};
    const auto probs = favouring(1 * 12 + 2);  // D minor
    CHECK(theory_chord(probs.data(), dorian, 3, -1) == choose_chord(probs.data(), dorian));
}

TEST_CASE("parallel fifths and octaves: similar motion only, compound intervals included") {
    CHECK(parallel_perfect(48, 55, 50, 57));        // C-G to D-A
    CHECK(parallel_perfect(48, 60, 50, 62));        // octaves
    CHECK(parallel_perfect(36, 55, 38, 57));        // compound fifth over the bass
    CHECK(parallel_perfect(60, 60, 62, 74));        // unison to octave
    CHECK_FALSE(parallel_perfect(48, 55, 48, 55));  // nothing moves
    CHECK_FALSE(parallel_perfect(48, 55, 50, 55));  // one voice holds
    CHECK_FALSE(parallel_perfect(48, 55, 43, 62));  // contrary motion
    CHECK_FALSE(parallel_perfect(48, 55, 50, 58));  // fifth to sixth
    CHECK_FALSE(parallel_perfect(-1, 55, 50, 57));  // a voice missing
}

TEST_CASE("voicings: every chord after every chord in every key, no parallels, small motion, in range") {
    for (int scale : {0, 1}) {
        for (int tonic = 0; tonic < 12; ++tonic) {
            const Key key{tonic, scale};
            for (const VoiceRanges& ranges : {kSeparateRanges, kSharedRanges}) {
                for (int a = 0; a < kFunctionalChords; ++a) {
                    const Voicing first = lead_voices(functional_class(key, a), Voicing{}, ranges);
                    REQUIRE(first.count == 3);
                    for (int b = 0; b < kFunctionalChords; ++b) {
                        CAPTURE(tonic);
                        CAPTURE(scale);
                        CAPTURE(a);
                        CAPTURE(b);
                        const int chord = functional_class(key, b);
                        const Voicing next = lead_voices(chord, first, ranges);
                        REQUIRE(next.count == 3);
                        CHECK(voicing_parallels(first, next) == 0);
                        CHECK(pitch_class(next.bass) == chord_root(chord));
                        CHECK(next.bass >= ranges.bass_low);
                        CHECK(next.bass <= ranges.bass_high);
                        int pcs[3];
                        upper_tones(chord, pcs);
                        int motion = 0;
                        for (int v = 0; v < 3; ++v) {
                            CHECK(next.upper[v] >= ranges.upper_low);
                            CHECK(next.upper[v] <= ranges.upper_high);
                            if (v > 0) CHECK(next.upper[v] > next.upper[v - 1]);
                            const int pc = pitch_class(next.upper[v]);
                            CHECK((pc == pcs[0] || pc == pcs[1] || pc == pcs[2]));
                            motion += std::abs(next.upper[v] - first.upper[v]);
                        }
                        // Three voices never need to move more than a fifth each to reach a nearby position.
                        CHECK(motion <= 21);
                    }
                }
            }
        }
    }
}

TEST_CASE("a minor key raises its leading tone under the dominant only") {
    const Key a_minor{9, 1};
    const int v = functional_class(a_minor, kDominant);  // E major
    const int i = functional_class(a_minor, kTonic);     // A minor
    CHECK(chord_root(v) == 4);
    CHECK(((melody_mask(a_minor, v) >> 8) & 1u) == 1u);  // G#
    CHECK(((melody_mask(a_minor, v) >> 7) & 1u) == 0u);  // no G
    CHECK(((melody_mask(a_minor, i) >> 7) & 1u) == 1u);
    CHECK(((melody_mask(a_minor, i) >> 8) & 1u) == 0u);
    CHECK(theory_key_mask(a_minor) == (key_mask(a_minor) | (1u << 8)));
    // Harmonic and melodic minor take the natural minor's chords too, without cross relations.
    const Key a_melodic{9, 3};
    const int iv = functional_class(a_melodic, kSubdominant);  // D minor: F natural
    CHECK(((melody_mask(a_melodic, iv) >> 5) & 1u) == 1u);
    CHECK(((melody_mask(a_melodic, iv) >> 6) & 1u) == 0u);  // no F#
    const Key c_major{0, 0};
    CHECK(theory_key_mask(c_major) == key_mask(c_major));
    CHECK(melody_mask(c_major, functional_class(c_major, kDominant)) == key_mask(c_major));
}
