//! The timer thread ([`run_timers`]): calls the protocol core when its next deadline comes
//! (or at least once a second), and sends what it then wants sent.

use std::sync::Arc;
use std::time::Duration;

use ferrowg_proto::Instant;

use super::outbox::Outbox;
use super::shared::Shared;
use super::BUF_SIZE;
use crate::state;

/// Runs the protocol timers until the daemon stops.
pub fn run_timers(shared: Arc<Shared>) {
    let mut scratch = ferrowg_sys::PageBuf::zeroed(BUF_SIZE);
    let mut out = Outbox::default();
    while !shared.stopping() {
        let sock = {
            let mut st = shared.lock();
            let now = state::now();
            st.device.set_clock(now, state::unix_nanos());
            st.device.handle_timeout(now);
            st.poll_rekeys(now);
            out.take(&mut st, &mut scratch);
            shared.nudge_handshakes(&st);
            st.socket.clone()
        };
        out.send(&sock);
        let st = shared.lock();
        let now = state::now();
        let next = st.device.poll_timeout();
        if next.is_some_and(|t| t <= now) {
            continue;
        }
        let wait = next
            .map_or(Duration::from_secs(1), |t| t - now)
            .min(Duration::from_secs(1));
        let mut st = st;
        st.planned_wake = Some(now + wait);
        let (mut st, _) = shared
            .timer_wake
            .wait_timeout(st, wait)
            .unwrap_or_else(|e| e.into_inner());
        st.planned_wake = None::<Instant>;
    }
}
