/* CPU levels of the compiled kernels, and what this CPU offers.
 *
 * Every dispatched kernel module is compiled once per level (setup.py: LEVELS) and linked
 * into one extension; dispatch.h picks the copy at import.  This header is compiled at the
 * baseline level only: nothing here may need more than x86-64-v2.
 *
 *   level 0 "baseline": x86-64-v2 (SSE4.2, POPCNT); the portable build on other machines
 *   level 1 "avx2":     x86-64-v3 (AVX2, FMA, BMI2: Haswell and later)
 *   level 2 "avx512":   x86-64-v4 (AVX-512 F/BW/CD/DQ/VL: Skylake-X, Ice Lake, Zen 4)
 *
 * GCC's __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XGETBV).
 */
#ifndef SYNAPTIC_CPU_H
#define SYNAPTIC_CPU_H

#define SYN_N_LEVELS 3

/* How many levels, from the baseline, the kernel modules were compiled for: setup.py
 * defines it when it compiles _cpu.pyx (1 when it is not given: the baseline only). */
#ifndef SYN_COMPILED_LEVELS
#define SYN_COMPILED_LEVELS 1
#endif

static const char *const syn_level_names[SYN_N_LEVELS] = {"baseline", "avx2", "avx512"};

/* Whether this CPU runs code of ``level``. */
static inline int syn_cpu_supports(int level)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    switch (level) {
    case 0: return __builtin_cpu_supports("x86-64-v2") != 0;
    case 1: return __builtin_cpu_supports("x86-64-v3") != 0;
    case 2: return __builtin_cpu_supports("x86-64-v4") != 0;
    default: return 0;
    }
#else
    return level == 0;   /* other architectures: the portable level only */
#endif
}

#endif
