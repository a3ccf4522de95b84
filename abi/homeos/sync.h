/* Spinlocks, mutexes, wait queues and timers. */
#ifndef HOMEOS_SYNC_H
#define HOMEOS_SYNC_H
#include <homeos/abi.h>

HOMEOS_EXTERN_C_BEGIN

/* Interrupt-safe spinlock: lock returns the interrupt state to give back to unlock. */
struct homeos_spinlock {
    uint32_t locked;
    uint32_t reserved;
};
#define HOMEOS_SPINLOCK_INIT { 0, 0 }
HOMEOS_API uint64_t homeos_spin_lock(struct homeos_spinlock* lock);
HOMEOS_API void homeos_spin_unlock(struct homeos_spinlock* lock, uint64_t flags);

/* Sleeping lock. Until the scheduler exists it spins with interrupts enabled. */
struct homeos_mutex {
    uint32_t locked;
    uint32_t waiters;
    void* owner;
};
#define HOMEOS_MUTEX_INIT { 0, 0, 0 }
HOMEOS_API void homeos_mutex_lock(struct homeos_mutex* mutex);
HOMEOS_API void homeos_mutex_unlock(struct homeos_mutex* mutex);

/* Wait queue: wait until condition() is true, an event is signalled, or the timeout passes. */
struct homeos_wait_queue {
    uint64_t generation;
};
#define HOMEOS_WAIT_QUEUE_INIT { 0 }
/* Returns 0 when condition(context) became true, -ETIMEDOUT (-110) on timeout. */
HOMEOS_API int homeos_wait_event_timeout(struct homeos_wait_queue* queue, bool (*condition)(void* context), void* context,
    uint64_t timeout_ns);
HOMEOS_API void homeos_wake_up(struct homeos_wait_queue* queue);

/* Timers: callbacks run in interrupt context; period 0 is one-shot. */
struct homeos_timer {
    uint64_t opaque[12];
};
HOMEOS_API void homeos_timer_init(struct homeos_timer* timer, void (*callback)(struct homeos_timer* timer, void* context), void* context);
HOMEOS_API void homeos_timer_start(struct homeos_timer* timer, uint64_t delay_ns, uint64_t period_ns);
HOMEOS_API bool homeos_timer_cancel(struct homeos_timer* timer);

/* Monotonic nanoseconds since boot, and busy/halting delays. */
HOMEOS_API uint64_t homeos_monotonic_ns(void);
HOMEOS_API void homeos_sleep_ns(uint64_t ns);

HOMEOS_EXTERN_C_END
#endif
