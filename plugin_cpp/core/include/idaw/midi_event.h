// One MIDI message as the engine hands it out: stamped with the engine's sample clock.
#pragma once

#include <cstdint>

namespace idaw {

/// One MIDI message leaving the audio thread, stamped with the engine's sample clock.
struct MidiEvent {
    std::uint64_t sample_time = 0;  ///< engine sample (0 = first sample after prepare()) at which it should sound
    std::uint8_t bytes[3] = {0, 0, 0};
    std::uint8_t size = 0;
};

/// MIDI status nibbles the generator writes.
inline constexpr std::uint8_t kMidiNoteOff = 0x80;
inline constexpr std::uint8_t kMidiNoteOn = 0x90;
inline constexpr std::uint8_t kMidiControlChange = 0xB0;
/// Controller 123: all notes off.
inline constexpr std::uint8_t kMidiAllNotesOff = 123;

}  // namespace idaw
