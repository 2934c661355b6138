"""Hearing recordings: key, tempo, beats, downbeats and chords from audio, and the labelled audio they are tested on."""
