// The public headers must compile as C++ and be usable from it.
#include "loom.h"
#include "loom_plugin.h"

#include <cstdio>

int main() {
    loom_plugin_info info = {};
    info.struct_size = sizeof info;
    loom_op_params p = {};
    p.struct_size = sizeof p;
    p.op = LOOM_OP_MATMUL;
    std::printf("C++ sees loom %s, op %u, status '%s'\n", loom_version_string(), p.op, loom_status_string(LOOM_OK));
    return info.struct_size == sizeof info ? 0 : 1;
}
