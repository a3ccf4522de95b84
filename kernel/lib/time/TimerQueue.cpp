// Deadline-ordered kernel timers; see TimerQueue.h.
#include <lib/time/TimerQueue.h>

namespace {
u64 saturating_add(u64 a, u64 b)
{
    u64 sum;
    return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}
}

TimerQueue::~TimerQueue()
{
    // Leave no timer pointing at a dead queue: disarm everything.
    while (Timer* timer = m_timers.take_first())
        timer->armed = false;
    while (Timer* timer = m_expiring.take_first())
        timer->armed = false;
}

void TimerQueue::insert_sorted(Timer& timer)
{
    // Before the first later deadline, so equal deadlines fire in the order they were added.
    for (Timer& candidate : m_timers) {
        if (candidate.deadline_ns > timer.deadline_ns) {
            m_timers.insert_before(candidate, timer);
            return;
        }
    }
    m_timers.append(timer);
}

void TimerQueue::add(Timer& timer, u64 now_ns, u64 delay_ns, u64 period_ns)
{
    VERIFY(timer.callback);
    cancel(timer);
    timer.deadline_ns = saturating_add(now_ns, delay_ns);
    timer.period_ns = period_ns;
    timer.armed = true;
    insert_sorted(timer);
    ++m_count;
}

bool TimerQueue::cancel(Timer& timer)
{
    if (!timer.armed)
        return false;
    // NOTE: the timer is on m_timers or, during run_expired(), maybe on m_expiring; removal
    // needs only its own node.
    List::remove(timer);
    timer.armed = false;
    --m_count;
    return true;
}

bool TimerQueue::begin_run(u64 now_ns)
{
    if (m_running)
        return false;
    m_running = true;
    // Take every due timer off the queue first: what callbacks add now waits for the next run.
    while (Timer* timer = m_timers.first()) {
        if (timer->deadline_ns > now_ns)
            break;
        List::remove(*timer);
        m_expiring.append(*timer);
    }
    return true;
}

Timer* TimerQueue::take_next_expired(u64 now_ns)
{
    // One at a time, so a callback's cancel() of a timer still waiting here takes effect.
    Timer* timer = m_expiring.take_first();
    if (!timer)
        return nullptr;
    if (timer->period_ns) {
        // Next deadline strictly after now, on the timer's own grid of periods.
        u64 missed = (now_ns - timer->deadline_ns) / timer->period_ns;
        u64 step;
        if (__builtin_mul_overflow(missed + 1, timer->period_ns, &step))
            step = UINT64_MAX;
        timer->deadline_ns = saturating_add(timer->deadline_ns, step);
        insert_sorted(*timer);
    } else {
        timer->armed = false;
        --m_count;
    }
    // Re-armed before the callback so that it can cancel or re-add itself.
    m_running_timer = timer;
    return timer;
}

u64 TimerQueue::next_deadline() const
{
    Timer* first = m_timers.first();
    return first ? first->deadline_ns : UINT64_MAX;
}
