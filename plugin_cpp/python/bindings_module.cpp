// Python extension `idaw_core`: the same engine the plugin runs, driven from outside the audio thread. Each domain
// binds itself in its own file (bindings.h); this one only defines the module.
#include "bindings.h"

NB_MODULE(idaw_core, m) {
    m.doc() = "idaw real-time core: DSP chain, lock-free rings and the native live callback.";
    using namespace idaw::python;
    // Classes before the functions whose signatures name them (load_model -> Model, PortAudioBridge -> Engine).
    bind_params(m);
    EngineClass engine = bind_engine(m);
    bind_midi(m, engine);
    bind_bridge(m);
    bind_nn(m);
    bind_master(m);
}
