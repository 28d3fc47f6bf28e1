/* fuzz_safetensors.c - libFuzzer target for the safetensors reader (see scripts/fuzz.sh). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_open(data, size, "safetensors");
    return 0;
}
