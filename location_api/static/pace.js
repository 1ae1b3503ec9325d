// How often the page sends its location: at the pace the server sets (a `pace` frame,
// docs/friends-protocol.md), at least every interval_s seconds while that pace holds.

/** Until the connection's first `pace` frame (right after init), the protocol's usual 30 s. */
export const DEFAULT_PACE_S = 30;

/**
 * A timer that calls `send` when the last location is `interval_s` old.
 *
 * @param {() => void} send sends a location now, and calls `sent()` when it did
 */
export function createPacer(send) {
  let intervalS = DEFAULT_PACE_S;
  let lastAt = null; // performance.now() of the last location sent on this connection
  let timer = null;

  function stopTimer() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  function schedule() {
    stopTimer();
    if (lastAt === null) return; // nothing sent on this connection yet: the first send starts it
    const waitMs = lastAt + intervalS * 1000 - performance.now();
    // A shorter pace than the time since the last send: at once, in this very task.
    if (waitMs <= 0) send();
    else timer = setTimeout(send, waitMs);
  }

  return {
    /** The server set a pace (seconds). */
    set(seconds) {
      intervalS = Math.max(1, Number(seconds) || DEFAULT_PACE_S); // never a loop of sends
      schedule();
    },
    /** A location was sent just now. */
    sent() {
      lastAt = performance.now();
      schedule();
    },
    /** The connection closed: no more sends, and the next connection starts afresh. */
    reset() {
      stopTimer();
      intervalS = DEFAULT_PACE_S;
      lastAt = null;
    },
    get intervalS() {
      return intervalS;
    },
    /** When the next send is due, performance.now() ms, or null. */
    get dueAt() {
      return lastAt === null ? null : lastAt + intervalS * 1000;
    },
  };
}
