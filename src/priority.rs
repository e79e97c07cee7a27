//! Thread priorities for work that must never slow proxied traffic: the
//! account API's runtime runs at nice 19, password hashing in the idle
//! class (Linux `SCHED_IDLE`: only CPU time nothing else wants).

use thread_priority::{set_current_thread_priority, ThreadPriority};

/// nice 19 for the calling thread.
pub fn background() {
    if let Err(e) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(error = ?e, "could not lower a background thread's priority");
    }
}

/// The idle scheduling class for the calling thread (nice 19 elsewhere).
pub fn idle() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        let id = thread_priority::thread_native_id();
        if thread_priority::set_thread_priority_and_policy(id, ThreadPriority::Min, idle).is_ok() {
            return;
        }
    }
    background();
}
