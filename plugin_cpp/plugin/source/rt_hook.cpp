#include "rt_hook.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "idaw/rt_check.h"

namespace idaw::plugin {

bool install_rtcheck_hook_from_environment() {
    const char* flag = std::getenv("IDAW_RTCHECK");
    if (flag == nullptr || std::strcmp(flag, "1") != 0) return false;
    void* symbol = dlsym(RTLD_DEFAULT, "idaw_rtcheck_section");
    if (symbol == nullptr) {
        std::fprintf(stderr, "idaw plugin: IDAW_RTCHECK=1 but idaw_rtcheck_section is not loaded (LD_PRELOAD?)\n");
        return false;
    }
    rt::set_section_hook(reinterpret_cast<rt::SectionHook>(symbol));
    std::fprintf(stderr, "idaw plugin: real-time checker hook installed\n");
    return true;
}

}  // namespace idaw::plugin
