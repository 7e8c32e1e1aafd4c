/* A sense-reversing spin barrier (syn_bar) for the threads of one parallel region, where
 * sgd_epoch's threads meet twice a batch (dense_epoch.pxi): they spin (with pause) and only
 * yield the core after a while, so a barrier costs well under a microsecond on idle cores,
 * and never a futex sleep and wake-up (libgomp's own barriers sleep at once when more
 * threads exist than cores, e.g. when two Python threads have each run an OpenMP region:
 * measured 2x slower W1 epochs).
 *
 * Declared for Cython in dense_epoch.pxi.  The same code at every CPU level.
 */
#ifndef SYNAPTIC_BARRIER_H
#define SYNAPTIC_BARRIER_H

#include <sched.h>

typedef struct { int count; int sense; } syn_bar;
static inline void syn_bar_init(syn_bar* b) { b->count = 0; b->sense = 0; }
static inline void syn_bar_wait(syn_bar* b, int team, int* local) {
    int s = !*local;
    unsigned long spins = 0;
    *local = s;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == team) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, s, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != s) {
        if (++spins < 1000) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

#endif /* SYNAPTIC_BARRIER_H */
