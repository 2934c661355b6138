// The engine with a concurrent control thread. Under TSan and ASan this is the race and memory check of the
// audio/control split; in every build it checks that no block, snapshot or telemetry record goes astray.
#include <doctest/doctest.h>

#include "engine_stress.h"

using namespace idaw::test;

TEST_CASE("audio thread and control thread share the engine safely") {
    for (int max_block : {64, 512, 1024}) {
        StressConfig cfg;
        cfg.max_block = max_block;
        cfg.frames = stress_frames();
        cfg.seed = static_cast<std::uint64_t>(max_block);
        check_stress_result(cfg, run_engine_stress(cfg));
    }
}
