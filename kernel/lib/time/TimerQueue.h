#pragma once
// Kernel timers, independent of any timer hardware: the clock interrupt calls run_expired(now).
//
// Interface:
//   Timer timer; timer.callback = on_tick; timer.context = this;
//   queue.add(timer, now, 10 * 1'000'000, /* period */ 10 * 1'000'000);
//   queue.run_expired(now);            // from the clock interrupt; fires in deadline order
//   queue.next_deadline();             // to program the next one-shot interrupt
//   queue.cancel(timer);
//
// A periodic timer is re-armed from its previous deadline, not from `now`, so it does not drift;
// periods missed while interrupts were off are skipped, not replayed. Callbacks may cancel or
// re-add any timer, themselves included. A timer added during run_expired() does not fire in the
// same run, even if already due, so a callback that re-adds itself with no delay cannot livelock.
//
// The queue is a deadline-sorted intrusive list: adding is O(n), the clock interrupt's path is
// O(1) per expired timer. It takes no lock; its owner (one per CPU) does.
#include <ktl/IntrusiveList.h>
#include <ktl/Types.h>

struct Timer {
    IntrusiveListNode node;
    u64 deadline_ns { 0 };
    u64 period_ns { 0 }; // 0 = one-shot.
    void (*callback)(Timer&, void* ctx) { nullptr };
    void* context { nullptr };
    bool armed { false };
};

class TimerQueue {
public:
    TimerQueue() = default;
    TimerQueue(const TimerQueue&) = delete;
    TimerQueue& operator=(const TimerQueue&) = delete;
    ~TimerQueue();

    // Arms `timer` to fire at now_ns + delay_ns (saturating). Re-arms it if it was armed already.
    void add(Timer& timer, u64 now_ns, u64 delay_ns, u64 period_ns = 0);
    // Disarms `timer`; returns whether it was armed (false if it already fired or was never added).
    bool cancel(Timer& timer);
    // Fires every timer due at now_ns, in deadline order (ties in the order they were added).
    // Returns the number of callbacks run.
    usize run_expired(u64 now_ns);
    // The earliest deadline, or UINT64_MAX if no timer is armed.
    u64 next_deadline() const;
    usize size() const { return m_count; }
    bool is_empty() const { return m_count == 0; }

    // Cancels every armed timer for which predicate(timer) is true; returns how many. For teardown
    // (a module going away must not leave a timer that calls into its freed code).
    template<typename Predicate>
    usize cancel_if(Predicate predicate)
    {
        usize cancelled = 0;
        List* lists[] = { &m_timers, &m_expiring };
        for (List* list : lists) {
            for (Timer* timer = list->first(); timer;) {
                Timer* next = list->next(*timer);
                if (predicate(static_cast<const Timer&>(*timer)) && cancel(*timer))
                    ++cancelled;
                timer = next;
            }
        }
        return cancelled;
    }

private:
    using List = IntrusiveList<Timer, &Timer::node>;
    void insert_sorted(Timer& timer);

    List m_timers;
    // Timers due in the current run_expired(), taken off m_timers before any callback runs.
    List m_expiring;
    usize m_count { 0 };
    bool m_running { false };
};
