/*
 * test_opencl_env.c - the OpenCL backend's discovery in normal and broken environments.
 *
 *   test_opencl_env devices                 list devices, check their info and the device options
 *   test_opencl_env unavailable TEXT        init must answer LOOM_ERR_UNAVAILABLE with TEXT in the
 *                                           reason (run under OCL_ICD_VENDORS=<empty folder> ...)
 *   test_opencl_env unavailable-pocl TEXT   the same, skipped when PoCL itself is not installed
 */
#include "harness.h"

#include <string.h>

static int devices(void) {
    hb_plugin p;
    uint32_t n;
    void *dev = NULL;
    if (hb_load("opencl", &p) != 0) return 1;
    if (p.init_status == LOOM_ERR_UNAVAILABLE) {
        printf("SKIP: OpenCL backend unavailable: %s\n", p.reason);
        hb_unload(&p);
        return HB_SKIP;
    }
    HB_CHECK(p.init_status == LOOM_OK, "init: %d %s", p.init_status, p.reason);
    n = p.api->device_count(p.state);
    HB_CHECK(n >= 1, "an available plugin has at least one device");
    for (uint32_t i = 0; i < n; i++) {
        loom_device_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        HB_CHECK(p.api->device_info(p.state, i, &info) == LOOM_OK, "device_info(%u)", i);
        printf("opencl:%u  %s\n    %s\n    %u compute units, %llu bytes, max allocation %llu bytes, caps 0x%llx\n", i,
               info.name, info.description, info.compute_units, (unsigned long long)info.memory_bytes,
               (unsigned long long)info.max_alloc_bytes, (unsigned long long)info.capabilities);
        HB_CHECK(info.name[0] != '\0', "device name");
        HB_CHECK(info.compute_units > 0, "compute units");
        HB_CHECK(info.memory_bytes > 0, "memory size");
        HB_CHECK(info.max_alloc_bytes > 0 && info.max_alloc_bytes <= info.memory_bytes, "allocation limit");
        HB_CHECK((info.capabilities & LOOM_BACKEND_CAP_HOST_MEMORY) == 0, "device memory, not host memory");
    }
    {
        /* An older, smaller loom_device_info is filled only as far as it reaches. */
        union {
            loom_device_info info;
            unsigned char bytes[sizeof(loom_device_info)];
        } u;
        memset(&u, 0xab, sizeof u);
        u.info.struct_size = (uint32_t)offsetof(loom_device_info, name);
        HB_CHECK(p.api->device_info(p.state, 0, &u.info) == LOOM_OK, "small device_info");
        HB_CHECK(u.bytes[offsetof(loom_device_info, name)] == 0xab, "wrote past the caller's struct");
    }
    {
        loom_device_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        HB_CHECK(p.api->device_info(p.state, n, &info) == LOOM_ERR_INVALID_ARGUMENT, "index past the end");
    }

    /* Options: platform by index, by name, and bad values. */
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.platform", "0", "plugin.opencl.device", "0", (const char *)NULL) ==
                 LOOM_OK,
             "platform=0 device=0");
    p.api->device_close(dev);
    dev = NULL;
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.platform", "no such platform", (const char *)NULL) ==
                     LOOM_ERR_NOT_FOUND &&
                 dev == NULL,
             "unknown platform name");
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.device", "99", (const char *)NULL) == LOOM_ERR_NOT_FOUND,
             "device index out of range");
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.max_alloc", "lots", (const char *)NULL) == LOOM_ERR_CONFIG,
             "bad max_alloc");
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.max_alloc", "100", (const char *)NULL) == LOOM_ERR_CONFIG,
             "max_alloc below 4096");
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.work_group", "3", (const char *)NULL) == LOOM_ERR_CONFIG,
             "work_group not a power of two");
    HB_CHECK(hb_open(&p, n, &dev, (const char *)NULL) == LOOM_ERR_NOT_FOUND, "device index past the end");
    HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.disable_ops", "rope,bogus", (const char *)NULL) == LOOM_ERR_CONFIG,
             "unknown op name in disable_ops");
    {
        /* Declined ops: supports_op says no (the engine then runs them on the CPU reference). */
        int64_t ne[4] = {8, 2, 1, 1};
        hb_tensor *a, *d;
        HB_CHECK(hb_open(&p, 0, &dev, "plugin.opencl.disable_ops", "add, silu", (const char *)NULL) == LOOM_OK,
                 "disable_ops=add,silu");
        a = hb_tensor_new(&p, dev, LOOM_TYPE_F32, ne);
        d = hb_tensor_new(&p, dev, LOOM_TYPE_F32, ne);
        HB_CHECK(hb_supports(&p, dev, LOOM_OP_ADD, NULL, NULL, d, a, a, NULL) == 0, "add declined");
        HB_CHECK(hb_supports(&p, dev, LOOM_OP_SILU, NULL, NULL, d, a, NULL, NULL) == 0, "silu declined");
        HB_CHECK(hb_supports(&p, dev, LOOM_OP_MUL, NULL, NULL, d, a, a, NULL) == 1, "mul still supported");
        hb_tensor_free(a);
        hb_tensor_free(d);
        p.api->device_close(dev);
    }
    hb_unload(&p);
    printf("device listing and options OK\n");
    return 0;
}

static int unavailable(const char *expect, int pocl_only) {
    hb_plugin p;
    if (hb_load("opencl", &p) != 0) return 1;
    printf("init status %d, reason: %s\n", p.init_status, p.reason);
    if (pocl_only && p.init_status == LOOM_ERR_UNAVAILABLE && strstr(p.reason, "no OpenCL platform") != NULL) {
        printf("SKIP: PoCL (libpocl.so.2) is not installed\n");
        hb_unload(&p);
        return HB_SKIP;
    }
    HB_CHECK(p.init_status == LOOM_ERR_UNAVAILABLE, "expected LOOM_ERR_UNAVAILABLE, got %d", p.init_status);
    HB_CHECK(strstr(p.reason, expect) != NULL, "reason '%s' lacks '%s'", p.reason, expect);
    HB_CHECK(p.state == NULL && p.api->device_count(p.state) == 0, "an unavailable plugin has no devices");
    hb_unload(&p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "devices") == 0) return devices();
    if (argc >= 3 && strcmp(argv[1], "unavailable") == 0) return unavailable(argv[2], 0);
    if (argc >= 3 && strcmp(argv[1], "unavailable-pocl") == 0) return unavailable(argv[2], 1);
    fprintf(stderr, "usage: test_opencl_env devices | unavailable TEXT | unavailable-pocl TEXT\n");
    return 2;
}
