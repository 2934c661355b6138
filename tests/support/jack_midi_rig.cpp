// The JACK clients of the MIDI tests (tests/support/jack_midi_clients.py builds and drives this program).
//
// Why C++ and not Python: a Python JACK callback must take the GIL. On a loaded machine the thread holding it (the
// test itself) is preempted, the callback runs past its cycle, and JACK drops that cycle for the client: the
// recorder then lost or misplaced messages and the player slipped, measuring the machine instead of idaw. These
// callbacks take no lock, allocate nothing and only copy into arrays sized before activation.
//
// Two clients on one server:
//   FEEDER   out_0, out_1: a constant LEVEL, or (with MUSIC) a mono float32 file played once after `play`;
//            the frame time of each cycle it played a piece of the music in is recorded.
//   RECORDER in_0, in_1, midi_in: per cycle its frame time when in_0 was non-zero ("live": the client under test
//            ran), every MIDI message with its frame time (cycle start + offset), cycles whose callback ended after
//            the cycle was over (overruns), skipped cycles, and JACK's xruns.
//
// Usage: jack_midi_rig SERVER FEEDER RECORDER MAX_SECONDS LEVEL [MUSIC.f32]
// Prints "ready" once both clients are active, then reads commands from stdin, one per line, each answered "ok"
// (or "error: ..."): `play` starts the music; `dump PATH` writes the state so far as JSON to PATH; `quit` (or the
// end of stdin) closes both clients and exits.

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kMaxMessageBytes = 8;
constexpr std::size_t kEventsPerSecond = 2000;  // idaw sends tens per second; the cap bounds memory only
constexpr std::size_t kMaxXruns = 100000;

struct MidiMessage {
    std::int64_t frame = 0;
    std::uint8_t size = 0;  // bytes the message had (more than kMaxMessageBytes are cut, and counted)
    std::uint8_t bytes[kMaxMessageBytes] = {};
};

/// An array filled by one thread and read by another: the writer publishes `count` after writing the entry.
template <typename T>
struct Published {
    std::vector<T> items;
    std::atomic<std::size_t> count{0};
    std::atomic<std::size_t> dropped{0};

    explicit Published(std::size_t capacity) : items(capacity) {}

    /// Real-time safe (single writer): appends, or counts the entry as dropped when full.
    void push(const T& item) {
        const std::size_t n = count.load(std::memory_order_relaxed);
        if (n >= items.size()) {
            dropped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        items[n] = item;
        count.store(n + 1, std::memory_order_release);
    }
};

struct Rig {
    jack_client_t* feeder = nullptr;
    jack_client_t* recorder = nullptr;
    jack_port_t* outs[2] = {};
    jack_port_t* ins[2] = {};
    jack_port_t* midi_in = nullptr;
    jack_nframes_t period = 0;
    float level = 0.0f;
    std::vector<float> music;
    std::atomic<bool> playing{false};
    std::size_t position = 0;  // next music sample (feeder thread only)

    Published<std::int64_t> live_frames;
    Published<std::int64_t> played_frames;
    Published<std::int64_t> overrun_frames;
    Published<std::int64_t> xrun_frames;
    Published<MidiMessage> events;
    std::atomic<std::int64_t> cycles{0};
    std::atomic<std::int64_t> frame_steps_off{0};
    std::atomic<std::int64_t> odd_sizes{0};
    std::atomic<std::int64_t> cut_messages{0};
    std::atomic<std::int64_t> last_frame{-1};

    Rig(std::size_t max_cycles, std::size_t max_events)
        : live_frames(max_cycles),
          played_frames(max_cycles),
          overrun_frames(max_cycles),
          xrun_frames(kMaxXruns),
          events(max_events) {}
};

/// Real-time safe: the feeder's process callback.
int feed(jack_nframes_t frames, void* arg) {
    auto& rig = *static_cast<Rig*>(arg);
    float* out[2] = {static_cast<float*>(jack_port_get_buffer(rig.outs[0], frames)),
                     static_cast<float*>(jack_port_get_buffer(rig.outs[1], frames))};
    if (rig.music.empty()) {
        for (float* o : out) std::fill(o, o + frames, rig.level);
        return 0;
    }
    for (float* o : out) std::fill(o, o + frames, 0.0f);
    if (!rig.playing.load(std::memory_order_acquire) || rig.position >= rig.music.size()) return 0;
    rig.played_frames.push(static_cast<std::int64_t>(jack_last_frame_time(rig.feeder)));
    const std::size_t n = std::min<std::size_t>(frames, rig.music.size() - rig.position);
    for (float* o : out) std::copy_n(rig.music.data() + rig.position, n, o);
    rig.position += frames;
    return 0;
}

/// Real-time safe: the recorder's process callback.
int record(jack_nframes_t frames, void* arg) {
    auto& rig = *static_cast<Rig*>(arg);
    const auto frame = static_cast<std::int64_t>(jack_last_frame_time(rig.recorder));
    const std::int64_t last = rig.last_frame.exchange(frame, std::memory_order_relaxed);
    if (last >= 0 && frame - last != static_cast<std::int64_t>(rig.period))
        rig.frame_steps_off.fetch_add(1, std::memory_order_relaxed);
    if (frames != rig.period) rig.odd_sizes.fetch_add(1, std::memory_order_relaxed);
    rig.cycles.fetch_add(1, std::memory_order_relaxed);
    const auto* in = static_cast<const float*>(jack_port_get_buffer(rig.ins[0], frames));
    if (in[0] != 0.0f) rig.live_frames.push(frame);
    void* midi = jack_port_get_buffer(rig.midi_in, frames);
    const jack_nframes_t count = jack_midi_get_event_count(midi);
    for (jack_nframes_t i = 0; i < count; ++i) {
        jack_midi_event_t event;
        if (jack_midi_event_get(&event, midi, i) != 0) continue;
        MidiMessage message;
        message.frame = frame + event.time;
        const std::size_t size = std::min(event.size, kMaxMessageBytes);
        if (event.size > kMaxMessageBytes) rig.cut_messages.fetch_add(1, std::memory_order_relaxed);
        message.size = static_cast<std::uint8_t>(size);
        std::memcpy(message.bytes, event.buffer, size);
        rig.events.push(message);
    }
    // The frame now, by the server's clock: a period or more past the cycle's start means this cycle ran late.
    if (static_cast<std::int64_t>(jack_frame_time(rig.recorder)) - frame >= static_cast<std::int64_t>(rig.period))
        rig.overrun_frames.push(frame);
    return 0;
}

int on_xrun(void* arg) {
    auto& rig = *static_cast<Rig*>(arg);
    rig.xrun_frames.push(rig.last_frame.load(std::memory_order_relaxed));
    return 0;
}

void write_frames(std::FILE* file, const char* name, const Published<std::int64_t>& list) {
    const std::size_t n = list.count.load(std::memory_order_acquire);
    std::fprintf(file, "\"%s\": [", name);
    for (std::size_t i = 0; i < n; ++i) std::fprintf(file, i ? ",%lld" : "%lld", static_cast<long long>(list.items[i]));
    std::fprintf(file, "],\n");
}

bool dump(const Rig& rig, const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) return false;
    std::fprintf(file, "{\n");
    write_frames(file, "live_frames", rig.live_frames);
    write_frames(file, "played_frames", rig.played_frames);
    write_frames(file, "overrun_frames", rig.overrun_frames);
    write_frames(file, "xrun_frames", rig.xrun_frames);
    const std::size_t n = rig.events.count.load(std::memory_order_acquire);
    std::fprintf(file, "\"events\": [");
    for (std::size_t i = 0; i < n; ++i) {
        const MidiMessage& m = rig.events.items[i];
        std::fprintf(file, i ? ",\n[%lld" : "\n[%lld", static_cast<long long>(m.frame));
        for (std::size_t b = 0; b < m.size; ++b) std::fprintf(file, ",%u", static_cast<unsigned>(m.bytes[b]));
        std::fprintf(file, "]");
    }
    std::fprintf(file, "],\n");
    std::fprintf(file,
                 "\"cycles\": %lld, \"frame_steps_off\": %lld, \"odd_sizes\": %lld, \"cut_messages\": %lld, "
                 "\"events_dropped\": %zu, \"frames_dropped\": %zu\n}\n",
                 static_cast<long long>(rig.cycles.load()), static_cast<long long>(rig.frame_steps_off.load()),
                 static_cast<long long>(rig.odd_sizes.load()), static_cast<long long>(rig.cut_messages.load()),
                 rig.events.dropped.load(),
                 rig.live_frames.dropped.load() + rig.played_frames.dropped.load() + rig.overrun_frames.dropped.load());
    const bool written = std::ferror(file) == 0;
    return std::fclose(file) == 0 && written;
}

bool read_music(const char* path, std::vector<float>& music) {
    std::FILE* file = std::fopen(path, "rb");
    if (file == nullptr) return false;
    std::fseek(file, 0, SEEK_END);
    const long bytes = std::ftell(file);
    std::fseek(file, 0, SEEK_SET);
    music.resize(static_cast<std::size_t>(std::max(0L, bytes)) / sizeof(float));
    const bool read = std::fread(music.data(), sizeof(float), music.size(), file) == music.size();
    std::fclose(file);
    return read && !music.empty();
}

int fail(const std::string& what) {
    std::cerr << "jack_midi_rig: " << what << "\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6 && argc != 7) return fail("usage: jack_midi_rig SERVER FEEDER RECORDER MAX_SECONDS LEVEL [MUSIC]");
    const char* server = argv[1];
    const double max_seconds = std::atof(argv[4]);
    if (!(max_seconds > 0.0 && max_seconds < 3600.0)) return fail("MAX_SECONDS must be in (0, 3600)");
    const auto options = static_cast<jack_options_t>(JackNoStartServer | JackServerName);
    jack_status_t status;
    jack_client_t* feeder = jack_client_open(argv[2], options, &status, server);
    jack_client_t* recorder = jack_client_open(argv[3], options, &status, server);
    if (feeder == nullptr || recorder == nullptr) return fail(std::string("cannot open clients on ") + server);
    const double rate = jack_get_sample_rate(recorder);
    const jack_nframes_t period = jack_get_buffer_size(recorder);
    const auto max_cycles = static_cast<std::size_t>(max_seconds * rate / period) + 1;
    Rig rig(max_cycles, static_cast<std::size_t>(max_seconds * kEventsPerSecond) + 1);
    rig.feeder = feeder;
    rig.recorder = recorder;
    rig.period = period;
    rig.level = static_cast<float>(std::atof(argv[5]));
    if (argc == 7 && !read_music(argv[6], rig.music)) return fail(std::string("cannot read music from ") + argv[6]);
    for (int c = 0; c < 2; ++c) {
        const std::string out = "out_" + std::to_string(c), in = "in_" + std::to_string(c);
        rig.outs[c] = jack_port_register(feeder, out.c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
        rig.ins[c] = jack_port_register(recorder, in.c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
    }
    rig.midi_in = jack_port_register(recorder, "midi_in", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput, 0);
    if (!rig.outs[0] || !rig.outs[1] || !rig.ins[0] || !rig.ins[1] || !rig.midi_in)
        return fail("cannot register the ports");
    jack_set_process_callback(feeder, feed, &rig);
    jack_set_process_callback(recorder, record, &rig);
    jack_set_xrun_callback(recorder, on_xrun, &rig);
    if (jack_activate(feeder) != 0 || jack_activate(recorder) != 0) return fail("cannot activate the clients");
    std::cout << "ready" << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "quit") break;
        if (line == "play") {
            rig.playing.store(true, std::memory_order_release);
            std::cout << "ok" << std::endl;
        } else if (line.rfind("dump ", 0) == 0) {
            std::cout << (dump(rig, line.substr(5)) ? "ok" : "error: cannot write " + line.substr(5)) << std::endl;
        } else {
            std::cout << "error: unknown command '" << line << "' (play, dump PATH, quit)" << std::endl;
        }
    }
    jack_deactivate(feeder);
    jack_deactivate(recorder);
    jack_client_close(feeder);
    jack_client_close(recorder);
    return 0;
}
