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
// O(1) per expired timer. It takes no lock; its owner (one per CPU) does. The owner passes its
// lock to run_expired(now, lock), which drops it around each callback: a callback may then call
// the owner's add() and cancel(), which take that lock (Linux's mod_timer from the handler).
//
//   lock held:  collect due timers -> take one, re-arm or disarm it, mark it running
//   unlocked:   callback(timer)            <- may add/cancel/free any timer, itself included
//   lock held:  clear running -> take the next one ...
//
// While a callback runs unlocked, is_running(timer) is true, so an owner's cancel can wait for
// the callback to finish before the caller frees the timer (Linux's del_timer_sync); the queue
// never touches a timer after its callback returns, so a callback may free its own timer.
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
    // Returns the number of callbacks run. Returns 0 at once if a run is already in progress
    // (a callback calling it, or another CPU): that run fires what is due.
    usize run_expired(u64 now_ns)
    {
        NoLock none;
        return run_expired(now_ns, none);
    }
    // The same, with the owner's lock held on entry: `lock.unlock()` before each callback and
    // `lock.lock()` after it; held again on return.
    template<typename Lock>
    usize run_expired(u64 now_ns, Lock& lock)
    {
        if (!begin_run(now_ns))
            return 0;
        usize fired = 0;
        while (Timer* timer = take_next_expired(now_ns)) {
            auto* callback = timer->callback;
            void* context = timer->context;
            lock.unlock();
            callback(*timer, context);
            lock.lock();
            m_running_timer = nullptr;
            ++fired;
        }
        m_running = false;
        return fired;
    }
    // Whether `timer`'s callback is running now (with the owner's lock dropped).
    bool is_running(const Timer& timer) const { return m_running_timer == &timer; }
    const Timer* running_timer() const { return m_running_timer; }
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
    struct NoLock {
        void lock() { }
        void unlock() { }
    };
    void insert_sorted(Timer& timer);
    // Moves every timer due at now_ns to m_expiring; false if a run is in progress.
    bool begin_run(u64 now_ns);
    // Takes the next expiring timer, re-arms (periodic) or disarms it, and marks it running.
    Timer* take_next_expired(u64 now_ns);

    List m_timers;
    // Timers due in the current run_expired(), taken off m_timers before any callback runs.
    List m_expiring;
    usize m_count { 0 };
    bool m_running { false };
    Timer* m_running_timer { nullptr };
};
