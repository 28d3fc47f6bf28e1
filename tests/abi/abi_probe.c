/*
 * abi_probe.c - a shared object whose single exported function reaches every struct of the
 * plugin ABI, so that abidw/abidiff can compare the plugin ABI (which libloom itself does not
 * export) with the committed baseline.
 */
#include "loom.h"
#include "loom_plugin.h"

LOOM_EXPORT int loom_abi_probe(loom_plugin_desc *d, loom_host_api *h, loom_backend_api *b, loom_arch_api *a,
                               loom_quantizer_api *q, loom_quant_format *qf, loom_tensor_view *v, loom_tensor_info *ti,
                               loom_op_params *p, loom_device_info *di, loom_kv_list *kv, loom_weight_desc *w,
                               loom_arch_params *ap, loom_option_def *od);
LOOM_EXPORT int loom_abi_probe(loom_plugin_desc *d, loom_host_api *h, loom_backend_api *b, loom_arch_api *a,
                               loom_quantizer_api *q, loom_quant_format *qf, loom_tensor_view *v, loom_tensor_info *ti,
                               loom_op_params *p, loom_device_info *di, loom_kv_list *kv, loom_weight_desc *w,
                               loom_arch_params *ap, loom_option_def *od) {
    return (d != 0) + (h != 0) + (b != 0) + (a != 0) + (q != 0) + (qf != 0) + (v != 0) + (ti != 0) + (p != 0) +
           (di != 0) + (kv != 0) + (w != 0) + (ap != 0) + (od != 0);
}
