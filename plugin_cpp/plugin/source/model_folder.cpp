#include "model_folder.h"

#include <array>
#include <chrono>
#include <memory>

#include "idaw/nn/model_loader.h"

namespace idaw::plugin {
namespace {

juce::String net_name(int index) {
    const std::string_view name = kMidiNetSpecs[static_cast<std::size_t>(index)].name;
    return juce::String(name.data(), name.size());
}

}  // namespace

ModelFolder::~ModelFolder() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    if (worker_.joinable()) worker_.join();
}

void ModelFolder::request_load_locked() {
    request_pending_ = true;
    if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
}

void ModelFolder::set_folder(const juce::String& path) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        folder_ = path;
        if (generator_ != nullptr) {
            request_load_locked();
        } else {
            status_.kind = ModelFolderStatus::Kind::None;
            status_.text = path.isEmpty() ? juce::String("built-in nets: load when the audio starts")
                                          : "loads when the audio starts: " + path;
        }
    }
    changed_.notify_all();
}

void ModelFolder::attach(MidiGenerator& generator) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (generator_ == &generator) return;
        generator_ = &generator;
        request_load_locked();
    }
    changed_.notify_all();
}

juce::String ModelFolder::folder() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return folder_;
}

ModelFolderStatus ModelFolder::status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
}

bool ModelFolder::wait_until_idle(int timeout_ms) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                             [this] { return !request_pending_ && !busy_; });
}

void ModelFolder::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
        if (request_pending_ && generator_ != nullptr) {
            const juce::String path = folder_;
            MidiGenerator& generator = *generator_;
            request_pending_ = false;
            busy_ = true;
            status_.kind = ModelFolderStatus::Kind::Loading;
            status_.text = "loading " + path;
            lock.unlock();
            load(path, generator);
            lock.lock();
            busy_ = false;
            changed_.notify_all();
            continue;
        }
        // Wake now and then to free the nets the audio thread has let go of.
        changed_.wait_for(lock, std::chrono::milliseconds(200));
        if (generator_ != nullptr) {
            MidiGenerator& generator = *generator_;
            lock.unlock();
            generator.collect();
            lock.lock();
        }
    }
}

juce::File ModelFolder::bundled_nets() {
    // On Linux JUCE finds this file through dladdr(): the plugin's shared object inside the VST3 bundle
    // (idaw.vst3/Contents/x86_64-linux/idaw.so), or the Standalone's executable.
    const juce::File binary = juce::File::getSpecialLocation(juce::File::currentExecutableFile);
    for (const juce::File& dir :
         {binary.getParentDirectory().getSiblingFile("Resources").getChildFile("nets"), binary.getSiblingFile("nets")})
        if (dir.isDirectory()) return dir;
    return {};
}

void ModelFolder::load(const juce::String& path, MidiGenerator& generator) {
    using Kind = ModelFolderStatus::Kind;
    if (path.isEmpty()) {
        const juce::File shipped = bundled_nets();
        if (shipped == juce::File()) {
            for (int i = 0; i < kNumMidiNets; ++i) generator.clear(static_cast<MidiNet>(i));
            set_status(Kind::None,
                       "no built-in nets in this build and no model folder: the MIDI generator's "
                       "stand-ins play nothing");
            return;
        }
        load_folder(shipped, "built-in nets", true, generator);
        return;
    }
    const juce::File dir(path);
    if (!juce::File::isAbsolutePath(path) || !dir.isDirectory()) {
        set_status(Kind::Error, "error: not a folder: " + path);
        return;
    }
    load_folder(dir, path, false, generator);
}

void ModelFolder::load_folder(const juce::File& dir, const juce::String& what, bool built_in,
                              MidiGenerator& generator) {
    using Kind = ModelFolderStatus::Kind;
    // Everything is loaded and checked before anything is offered: a bad file leaves the nets in use alone.
    std::array<std::unique_ptr<nn::Model>, kNumMidiNets> models;
    juce::StringArray loaded, missing;
    for (int i = 0; i < kNumMidiNets; ++i) {
        const auto& spec = kMidiNetSpecs[static_cast<std::size_t>(i)];
        const juce::File file = dir.getChildFile(net_name(i) + ".json");
        // Anything of that name goes to the loader, which refuses a FIFO, device or directory with its error at once
        // (existsAsFile() passes a FIFO, and opening one blocks until a writer comes).
        if (!file.exists()) {
            missing.add(net_name(i));
            continue;
        }
        nn::LoadResult result = nn::load_model_file(file.getFullPathName().toStdString());
        if (!result.ok()) {
            set_status(Kind::Error, "error: " + juce::String(result.error));
            return;
        }
        if (result.model->input_size() != spec.inputs || result.model->output_size() != spec.outputs) {
            set_status(Kind::Error, "error: " + file.getFileName() + ": the " + net_name(i) + " needs " +
                                        juce::String(spec.inputs) + " inputs and " + juce::String(spec.outputs) +
                                        " outputs, the model has " + juce::String(result.model->input_size()) +
                                        " and " + juce::String(result.model->output_size()));
            return;
        }
        models[static_cast<std::size_t>(i)] = std::move(result.model);
        loaded.add(net_name(i));
    }
    if (loaded.isEmpty()) {
        set_status(Kind::Error,
                   "error: no MelodyTransformer.json, HarmonyPredictor.json, DynamicsEngine.json or "
                   "GroovePredictor.json in " +
                       what);
        return;
    }
    for (int i = 0; i < kNumMidiNets; ++i) {
        auto& model = models[static_cast<std::size_t>(i)];
        if (model == nullptr) {
            generator.clear(static_cast<MidiNet>(i));
            continue;
        }
        const std::string error = generator.install(static_cast<MidiNet>(i), std::move(model));
        if (!error.empty()) {
            set_status(Kind::Error, "error: " + juce::String(error));
            return;
        }
    }
    juce::String text = (built_in ? "built-in nets (trained, shipped with the plugin): " : "") +
                        juce::String(loaded.size()) + " of " + juce::String(kNumMidiNets) +
                        " nets loaded: " + loaded.joinIntoString(", ");
    if (!missing.isEmpty()) text << " (stand-ins for " << missing.joinIntoString(", ") << ")";
    set_status(Kind::Loaded, text);
}

void ModelFolder::set_status(ModelFolderStatus::Kind kind, const juce::String& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.kind = kind;
    status_.text = text;
    ++status_.generation;
}

}  // namespace idaw::plugin
