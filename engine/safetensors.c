/*
 * safetensors.c - safetensors reader (single file and sharded) and Hugging Face folders.
 * (Placeholder until the reader lands.)
 */
#include "internal.h"

loom_status loom_safetensors_parse(loom_file *file, const uint8_t *image, uint64_t size, const char *what,
                                   char *err, size_t err_size) {
    (void)file; (void)image; (void)size;
    return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED, "%s: safetensors reader not built yet", what);
}
loom_status loom_safetensors_open_index(loom_file *file, const char *index_path, char *err, size_t err_size) {
    (void)file;
    return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED, "%s: safetensors reader not built yet", index_path);
}
loom_status loom_hf_folder_open(loom_file *file, const char *dir, char *err, size_t err_size) {
    (void)file;
    return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED, "%s: safetensors reader not built yet", dir);
}
