"""Helpers shared by the tests (and the benchmarks that drive real parts the same way): one module per thing held.

    repo                    REPO, the repository's root folder
    needs                   need()/need_program()/need_module(): skip on a user's machine, fail in CI
    idaw_command            running the `idaw` command as a user would; the one-line error rule
    audio                   test signals and writing them as audio files
    levels                  peak_db(): the peak of audio oversampled by scipy, a meter apart from the one under test
    live                    `idaw live` as a subprocess
    jack_server             a private JACK server with the dummy driver
    jack_clients            JACK clients that feed and record a device under test
    jack_midi_clients       JACK clients for `idaw live --midi`
    midi_helpers            generator nets with seeded weights, reading MIDI files back
    endpoints               free loopback endpoints
    sidecar_helpers         a sidecar on a thread, an engine paced like a sound card, a bare fake sidecar, waiting
    sidecar_fuzz            the protocol's sequence fuzzer (`python -m tests.support.sidecar_fuzz`)
    sidecar_faulty_handler  a handler with a switchable bug (`--handler tests.support.sidecar_faulty_handler:make`)
    sidecar_live_harness    a live engine with a sidecar link, run as a subprocess by the kill test
    plugin                  the built plugin and its C++ test host, the plugin's saved state, a private X server
    plugin_live             the test host running the plugin live, and a fake sidecar speaking to it by hand

conftest.py holds the fixtures, thin wrappers around these.
"""
