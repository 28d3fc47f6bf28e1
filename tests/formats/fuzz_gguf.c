/* fuzz_gguf.c - libFuzzer target for the GGUF reader (see scripts/fuzz.sh). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_open(data, size, "gguf");
    return 0;
}
