// The MIDI generator on the audio thread makes no allocation, lock or sleep, as seen by libidaw_rtcheck, while a
// loader thread installs and frees nets and pushes controls (normal builds only: sanitizers interpose the same
// functions).
#include <doctest/doctest.h>

#include <string>

#include "idaw/rt_check.h"
#include "idaw_rtcheck.h"
#include "midi_test_support.h"
#include "rtcheck_support.h"

using namespace idaw::test;

TEST_CASE("checker sanity: an allocation inside a section is seen") { CHECK(checker_sees_an_allocation()); }

TEST_CASE("generating MIDI while nets are swapped and controls change is allocation-, lock- and sleep-free") {
    CheckerInstalled checker;
    // Counts, not time: at least 300 s of audio, 20 installs, 10 swaps, 100 steps and 50 notes, however long it takes.
    SwapGoals goals;
    goals.audio_frames = 48000 * 300;
    const SwapWorkout w = run_swap_workout(goals, 512, 5);
    const NoteCheck r = check_notes(w.events);
    MESSAGE("rtcheck workout: " << w.installs << " installs, " << w.clears << " clears, " << w.controls << " controls, "
                                << w.counters.model_swaps << " swap blocks, " << w.counters.steps << " steps, " << r.ons
                                << " notes, " << idaw_rtcheck_violations() << " violations");
    REQUIRE_MESSAGE(w.reached, "no progress in " << w.loader_rounds << " loader rounds");
    CHECK(w.installs >= goals.installs);
    CHECK(w.counters.model_swaps >= goals.swaps);
    CHECK(w.counters.steps >= goals.steps);
    CHECK(r.ons >= goals.note_ons);
    CHECK(r.hanging == 0);
    CHECK(idaw_rtcheck_violations() == 0);
    CHECK(std::string(idaw_rtcheck_last_violation()).empty());
}
