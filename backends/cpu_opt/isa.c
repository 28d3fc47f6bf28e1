/*
 * isa.c - run-time ISA detection: CPUID feature bits plus XGETBV (the OS must save the YMM and
 * ZMM state, or the instructions fault even where CPUID lists them, e.g. in some VMs).
 */
#include "cpu_opt.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CO_X86 1
#else
#define CO_X86 0
#endif

static co_isa_info g_info;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if CO_X86
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void detect(void) {
    co_isa_info *in = &g_info;
    memset(in, 0, sizeof *in);
    strcpy(in->cpu_name, "unknown");
#if CO_X86
    unsigned a, b, c, d;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 1) {
        __cpuid(1, a, b, c, d);
        int osxsave = (c >> 27) & 1;
        in->fma = (c >> 12) & 1;
        in->f16c = (c >> 29) & 1;
        int avx = (c >> 28) & 1;
        if (osxsave && avx) {
            uint64_t xcr0 = read_xcr0();
            in->os_ymm = (xcr0 & 0x6) == 0x6;
            in->os_zmm = in->os_ymm && (xcr0 & 0xe0) == 0xe0;
        }
        if (max_leaf >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            in->avx2 = (b >> 5) & 1;
            in->avx512f = (b >> 16) & 1;
            in->avx512dq = (b >> 17) & 1;
            in->avx512bw = (b >> 30) & 1;
            in->avx512vl = (b >> 31) & 1;
            in->avx512vnni = (c >> 11) & 1;
            __cpuid_count(7, 1, a, b, c, d);
            in->avxvnni = (a >> 4) & 1;
            in->avx512bf16 = (a >> 5) & 1;
        }
    }
    unsigned ext = __get_cpuid_max(0x80000000u, NULL);
    if (ext >= 0x80000004u) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++) __cpuid(0x80000002u + i, r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]);
        char name[49];
        memcpy(name, r, 48);
        name[48] = 0;
        const char *p = name;
        while (*p == ' ') p++;
        snprintf(in->cpu_name, sizeof in->cpu_name, "%s", p);
    }
#endif
    in->best = CO_ISA_SCALAR;
    if (in->os_ymm && in->avx2 && in->fma && in->f16c) in->best = CO_ISA_AVX2;
    if (in->best == CO_ISA_AVX2 && in->os_zmm && in->avx512f && in->avx512bw && in->avx512vl && in->avx512dq &&
        in->avx512vnni)
        in->best = CO_ISA_AVX512;
    snprintf(in->summary, sizeof in->summary, "%s; AVX2%s FMA%s F16C%s AVX-512%s VNNI%s BF16%s OS-zmm%s",
             in->cpu_name, in->avx2 ? "+" : "-", in->fma ? "+" : "-", in->f16c ? "+" : "-",
             in->avx512f ? "+" : "-", in->avx512vnni ? "+" : "-", in->avx512bf16 ? "+" : "-",
             in->os_zmm ? "+" : "-");
}

const co_isa_info *co_isa_detect(void) {
    pthread_once(&g_once, detect);
    return &g_info;
}

const char *co_isa_name(int isa) {
    switch (isa) {
    case CO_ISA_SCALAR: return "scalar";
    case CO_ISA_AVX2: return "avx2";
    case CO_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

int co_isa_parse(const char *s) {
    if (!s || !strcmp(s, "auto") || !*s) return co_isa_detect()->best;
    for (int i = 0; i < CO_ISA_COUNT; i++)
        if (!strcmp(s, co_isa_name(i))) return i;
    return -1;
}
