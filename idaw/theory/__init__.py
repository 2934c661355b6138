"""The music-theory layer: analysis of scores and MIDI (keys, harmony, cadences, voice leading, rhythm, melody, form).

music21 parses files and does what it already does well (key profiles, Roman numeral figures, chord names);
idaw.theory adds what it does not: smoothed local keys, chord labelling that sees past non-chord tones,
cadences, voice-leading faults, rhythm and melody descriptors and form. Depends on music21 and numpy only.
"""
