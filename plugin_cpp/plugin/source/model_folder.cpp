#include "model_folder.h"

#include <chrono>
#include <memory>
#include <vector>

#include "idaw/nn/model_loader.h"

namespace idaw::plugin {

ModelFolder::~ModelFolder() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    if (worker_.joinable()) worker_.join();
}

void ModelFolder::set_folder(const juce::String& path) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        folder_ = path;
        requested_ = path;
        request_pending_ = true;
        if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
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
    return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return !request_pending_ && !busy_; });
}

void ModelFolder::acquire() noexcept {
    for (auto& slot : slots_) slot.acquire();
}

void ModelFolder::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
        if (request_pending_) {
            const juce::String path = requested_;
            request_pending_ = false;
            busy_ = true;
            status_.kind = ModelFolderStatus::Kind::Loading;
            status_.text = "loading " + path;
            lock.unlock();
            load(path);
            lock.lock();
            busy_ = false;
            changed_.notify_all();
            continue;
        }
        // Wake now and then to free the models the audio thread has let go of.
        changed_.wait_for(lock, std::chrono::milliseconds(200));
        lock.unlock();
        for (auto& slot : slots_) slot.collect();
        lock.lock();
    }
}

void ModelFolder::load(const juce::String& path) {
    using Kind = ModelFolderStatus::Kind;
    if (path.isEmpty()) {
        for (auto& slot : slots_) slot.clear();
        set_status(Kind::None, "no model folder");
        return;
    }
    const juce::File dir(path);
    if (!juce::File::isAbsolutePath(path) || !dir.isDirectory()) {
        set_status(Kind::Error, "error: not a folder: " + path);
        return;
    }
    juce::Array<juce::File> files = dir.findChildFiles(juce::File::findFiles, false, "*.json");
    files.sort();
    if (files.isEmpty()) {
        set_status(Kind::Error, "error: no .json model in " + path);
        return;
    }
    if (files.size() > kMaxModels) {
        set_status(Kind::Error, "error: " + juce::String(files.size()) + " .json files in " + path + " (at most " +
                                    juce::String(kMaxModels) + ")");
        return;
    }
    // Everything is loaded and checked before anything is offered: a bad file leaves the models in use alone.
    std::vector<std::unique_ptr<nn::Model>> models;
    juce::StringArray names;
    for (const juce::File& file : files) {
        nn::LoadResult result = nn::load_model_file(file.getFullPathName().toStdString());
        if (!result.ok()) {
            set_status(Kind::Error, "error: " + juce::String(result.error));
            return;
        }
        names.add(file.getFileNameWithoutExtension() + " (" + juce::String(result.model->num_parameters()) + ")");
        models.push_back(std::move(result.model));
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (i < models.size())
            slots_[i].install(std::move(models[i]));
        else
            slots_[i].clear();
    }
    set_status(Kind::Loaded, juce::String(static_cast<int>(names.size())) + " model" + (names.size() == 1 ? "" : "s") +
                                 " loaded: " + names.joinIntoString(", "));
}

void ModelFolder::set_status(ModelFolderStatus::Kind kind, const juce::String& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.kind = kind;
    status_.text = text;
    ++status_.generation;
}

}  // namespace idaw::plugin
