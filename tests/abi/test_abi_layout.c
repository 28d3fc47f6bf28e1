/*
 * test_abi_layout.c - pins the layout of every struct that crosses the library/plugin boundary.
 * Existing members may never move; new members are appended (and this file grows with them).
 * Offsets are those of the LP64 ABI (x86-64, aarch64).
 */
#undef NDEBUG
#include "loom.h"
#include "loom_plugin.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>

#define PIN(type, member, off) static_assert(offsetof(type, member) == (off), #type "." #member " moved")
#define SIZE(type, size)       static_assert(sizeof(type) == (size), "sizeof(" #type ") changed")

/* loom_types.h */
PIN(loom_option_def, struct_size, 0);
PIN(loom_option_def, type, 4);
PIN(loom_option_def, key, 8);
PIN(loom_option_def, default_value, 16);
PIN(loom_option_def, help, 24);
SIZE(loom_option_def, 32);

/* loom_plugin.h */
PIN(loom_op_params, struct_size, 0);
PIN(loom_op_params, op, 4);
PIN(loom_op_params, i, 8);
PIN(loom_op_params, f, 40);
SIZE(loom_op_params, 72);

PIN(loom_tensor_view, struct_size, 0);
PIN(loom_tensor_view, type, 4);
PIN(loom_tensor_view, ne, 8);
PIN(loom_tensor_view, nb, 40);
PIN(loom_tensor_view, data, 72);
PIN(loom_tensor_view, buffer, 80);
PIN(loom_tensor_view, offset, 88);
PIN(loom_tensor_view, extra, 96);
PIN(loom_tensor_view, flags, 104);
SIZE(loom_tensor_view, 112);

PIN(loom_tensor_info, struct_size, 0);
PIN(loom_tensor_info, type, 4);
PIN(loom_tensor_info, n_dims, 8);
PIN(loom_tensor_info, flags, 12);
PIN(loom_tensor_info, ne, 16);
PIN(loom_tensor_info, nb, 48);
PIN(loom_tensor_info, name, 80);

PIN(loom_host_api, struct_size, 0);
PIN(loom_host_api, abi_version, 4);
PIN(loom_host_api, log, 8);
PIN(loom_host_api, alloc, 16);
PIN(loom_host_api, free, 24);
PIN(loom_host_api, meta_get_int, 32);
PIN(loom_host_api, meta_get_float, 40);
PIN(loom_host_api, meta_get_string, 48);
PIN(loom_host_api, meta_get_array, 56);
PIN(loom_host_api, model_tensor, 64);
PIN(loom_host_api, tensor_info, 72);
PIN(loom_host_api, tensor_new, 80);
PIN(loom_host_api, tensor_view, 88);
PIN(loom_host_api, tensor_write, 96);
PIN(loom_host_api, tensor_read, 104);
PIN(loom_host_api, op, 112);
PIN(loom_host_api, exec_last_error, 120);
PIN(loom_host_api, exec_set_error, 128);

PIN(loom_device_info, struct_size, 0);
PIN(loom_device_info, compute_units, 4);
PIN(loom_device_info, memory_bytes, 8);
PIN(loom_device_info, max_alloc_bytes, 16);
PIN(loom_device_info, capabilities, 24);
PIN(loom_device_info, name, 32);
PIN(loom_device_info, description, 160);

PIN(loom_kv_list, struct_size, 0);
PIN(loom_kv_list, count, 4);
PIN(loom_kv_list, keys, 8);
PIN(loom_kv_list, values, 16);

PIN(loom_backend_api, struct_size, 0);
PIN(loom_backend_api, device_count, 8);
PIN(loom_backend_api, device_info, 16);
PIN(loom_backend_api, device_open, 24);
PIN(loom_backend_api, device_close, 32);
PIN(loom_backend_api, supports_op, 40);
PIN(loom_backend_api, buffer_alloc, 48);
PIN(loom_backend_api, buffer_free, 56);
PIN(loom_backend_api, buffer_write, 64);
PIN(loom_backend_api, buffer_read, 72);
PIN(loom_backend_api, compute, 80);
PIN(loom_backend_api, synchronize, 88);
PIN(loom_backend_api, weight_prepare, 96);
PIN(loom_backend_api, weight_release, 104);
PIN(loom_backend_api, last_error, 112);

PIN(loom_weight_desc, struct_size, 0);
PIN(loom_weight_desc, role, 4);
PIN(loom_weight_desc, layer, 8);
PIN(loom_weight_desc, head_dim, 12);
PIN(loom_weight_desc, name, 16);
PIN(loom_weight_desc, norm, 24);
PIN(loom_weight_desc, group, 32);

PIN(loom_arch_params, struct_size, 0);
PIN(loom_arch_params, n_ctx, 4);
PIN(loom_arch_params, n_batch, 8);
PIN(loom_arch_params, kv_type, 12);

PIN(loom_arch_api, struct_size, 0);
PIN(loom_arch_api, match, 8);
PIN(loom_arch_api, model_init, 16);
PIN(loom_arch_api, model_free, 24);
PIN(loom_arch_api, model_dims, 32);
PIN(loom_arch_api, context_init, 40);
PIN(loom_arch_api, context_free, 48);
PIN(loom_arch_api, context_reset, 56);
PIN(loom_arch_api, forward, 64);
PIN(loom_arch_api, describe_weights, 72);
PIN(loom_arch_api, export_metadata, 80);

PIN(loom_quant_format, struct_size, 0);
PIN(loom_quant_format, type, 4);
PIN(loom_quant_format, block_size, 8);
PIN(loom_quant_format, block_bytes, 12);
PIN(loom_quant_format, name, 16);
PIN(loom_quant_format, dequantize_row, 24);
PIN(loom_quant_format, quantize_row, 32);

PIN(loom_quantizer_api, struct_size, 0);
PIN(loom_quantizer_api, n_formats, 4);
PIN(loom_quantizer_api, formats, 8);

PIN(loom_plugin_desc, struct_size, 0);
PIN(loom_plugin_desc, abi_major, 4);
PIN(loom_plugin_desc, abi_minor, 6);
PIN(loom_plugin_desc, kind, 8);
PIN(loom_plugin_desc, n_options, 12);
PIN(loom_plugin_desc, name, 16);
PIN(loom_plugin_desc, version, 24);
PIN(loom_plugin_desc, vendor, 32);
PIN(loom_plugin_desc, description, 40);
PIN(loom_plugin_desc, capabilities, 48);
PIN(loom_plugin_desc, options, 56);
PIN(loom_plugin_desc, api, 64);
PIN(loom_plugin_desc, init, 72);
PIN(loom_plugin_desc, shutdown, 80);

/* loom.h */
PIN(loom_plugin_info, struct_size, 0);
PIN(loom_plugin_info, kind, 4);
PIN(loom_plugin_info, state, 8);
PIN(loom_plugin_info, n_devices, 12);
PIN(loom_plugin_info, abi_major, 16);
PIN(loom_plugin_info, abi_minor, 20);
PIN(loom_plugin_info, name, 24);
PIN(loom_plugin_info, version, 32);
PIN(loom_plugin_info, vendor, 40);
PIN(loom_plugin_info, description, 48);
PIN(loom_plugin_info, path, 56);
PIN(loom_plugin_info, reason, 64);

PIN(loom_device_desc, struct_size, 0);
PIN(loom_device_desc, compute_units, 4);
PIN(loom_device_desc, memory_bytes, 8);
PIN(loom_device_desc, max_alloc_bytes, 16);
PIN(loom_device_desc, capabilities, 24);
PIN(loom_device_desc, name, 32);
PIN(loom_device_desc, description, 160);

PIN(loom_model_params, struct_size, 0);
PIN(loom_model_params, progress, 8);
PIN(loom_model_params, progress_user_data, 16);

PIN(loom_model_info, struct_size, 0);
PIN(loom_model_info, n_tensors, 4);
PIN(loom_model_info, n_vocab, 8);
PIN(loom_model_info, n_ctx_train, 16);
PIN(loom_model_info, n_embd, 24);
PIN(loom_model_info, n_layer, 32);
PIN(loom_model_info, bos_token, 40);
PIN(loom_model_info, eos_token, 44);
PIN(loom_model_info, file_bytes, 48);
PIN(loom_model_info, weight_bytes, 56);
PIN(loom_model_info, load_seconds, 64);
PIN(loom_model_info, architecture, 72);
PIN(loom_model_info, arch_plugin, 80);
PIN(loom_model_info, name, 88);
PIN(loom_model_info, path, 96);
PIN(loom_model_info, tokenizer, 104);

PIN(loom_tensor_desc, struct_size, 0);
PIN(loom_tensor_desc, type, 4);
PIN(loom_tensor_desc, n_dims, 8);
PIN(loom_tensor_desc, ne, 16);
PIN(loom_tensor_desc, bytes, 48);
PIN(loom_tensor_desc, file_offset, 56);
PIN(loom_tensor_desc, name, 64);

PIN(loom_chat_message, struct_size, 0);
PIN(loom_chat_message, role, 8);
PIN(loom_chat_message, content, 16);

PIN(loom_context_params, struct_size, 0);
PIN(loom_context_params, n_ctx, 4);
PIN(loom_context_params, n_batch, 8);
PIN(loom_context_params, n_threads, 12);
PIN(loom_context_params, backend, 16);

PIN(loom_sampler_params, struct_size, 0);
PIN(loom_sampler_params, top_k, 4);
PIN(loom_sampler_params, temperature, 8);
PIN(loom_sampler_params, top_p, 12);
PIN(loom_sampler_params, min_p, 16);
PIN(loom_sampler_params, repeat_penalty, 20);
PIN(loom_sampler_params, repeat_last_n, 24);
PIN(loom_sampler_params, seed, 32);

PIN(loom_generate_params, struct_size, 0);
PIN(loom_generate_params, max_tokens, 4);
PIN(loom_generate_params, stop, 8);
PIN(loom_generate_params, n_stop, 16);
PIN(loom_generate_params, on_token, 24);
PIN(loom_generate_params, user_data, 32);

PIN(loom_generate_stats, struct_size, 0);
PIN(loom_generate_stats, n_prompt, 4);
PIN(loom_generate_stats, n_generated, 8);
PIN(loom_generate_stats, stop_reason, 12);
PIN(loom_generate_stats, prompt_seconds, 16);
PIN(loom_generate_stats, generate_seconds, 24);

/* Enum values are part of the ABI too. */
static_assert(LOOM_ERR_BUFFER_TOO_SMALL == 16, "status codes renumbered");
static_assert(LOOM_TYPE_I4X2 == 14, "type ids renumbered");
static_assert(LOOM_OP_HADAMARD == 16, "op ids renumbered");
static_assert(LOOM_OP_GROUPED_SOFTMAX == 17, "op ids renumbered");
static_assert(LOOM_PLUGIN_KIND_QUANTIZER == 3, "plugin kinds renumbered");
static_assert(LOOM_ROLE_MIXING == 7, "weight roles renumbered");

int main(void) {
    /* LOOM_HAS_MEMBER reads a newer member only when the struct covers it. */
    loom_backend_api old = {0};
    old.struct_size = (uint32_t)offsetof(loom_backend_api, synchronize);
    assert(LOOM_HAS_MEMBER(&old, loom_backend_api, compute));
    assert(!LOOM_HAS_MEMBER(&old, loom_backend_api, synchronize));
    assert(LOOM_ABI_VERSION_MAJOR(LOOM_ABI_VERSION) == LOOM_ABI_MAJOR);
    assert(LOOM_ABI_VERSION_MINOR(LOOM_ABI_VERSION) == LOOM_ABI_MINOR);
    assert(loom_version() == ((LOOM_VERSION_MAJOR << 16) | (LOOM_VERSION_MINOR << 8) | LOOM_VERSION_PATCH));
    printf("ABI layout pinned: passed\n");
    return 0;
}
