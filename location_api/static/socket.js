// The friends panel's WebSocket to geo-friends and its lifetime (docs/friends-protocol.md,
// "reconnect" and "Closing"): connecting, connecting again when the server asks (a
// `reconnect` frame: after its after_ms) or when the connection is lost (after a growing,
// jittered pause), and never again after the user disconnects or signs out. What the frames
// mean is friends.js's business; this module only keeps one socket open while it is wanted.

/**
 * Pauses before the next attempt after a lost connection, ms: one more step per attempt that
 * got no frame, the last repeated. Each is jittered (x0.5 to x1.5), so clients that lost the
 * same instance do not all come back in the same second.
 */
const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];

/**
 * Close codes after which the page connects again by itself: the server went away (1001,
 * without a drain), the connection dropped (1006: also a handshake refused with 503 or 429),
 * or the server asks to try later (1011 to 1014). Others need the user: 1000 is a close that
 * was asked for (Disconnect, sign_out), 4001 an expired token, 1008 and 1009 a refusal that
 * would only repeat.
 */
const RETRY_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);

/**
 * One wanted connection.
 *
 * @param {object} options
 * @param {() => [string, string[]]} options.target the URL and subprotocols to connect with
 *   (asked at every attempt: the token may have changed)
 * @param {() => void} options.onOpen a connection opened
 * @param {(data: string) => void} options.onFrame a frame arrived (its text)
 * @param {(event: CloseEvent, retrying: boolean) => void} options.onClose the connection closed;
 *   `retrying` when another attempt is scheduled (see `waiting`)
 */
export function createSocket({ target, onOpen, onFrame, onClose }) {
  let socket = null;
  let open = false;
  let wanted = false; // connect again when the connection is lost
  let timer = null;
  let failures = 0; // attempts since the last one that brought a frame
  let waiting = null; // {why: "restart" | "lost", code, at: performance.now() ms}

  function cancel() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    waiting = null;
  }

  function schedule(why, code, delayMs) {
    cancel();
    waiting = { why, code, at: performance.now() + delayMs };
    timer = setTimeout(() => {
      try {
        attempt();
      } catch (error) {
        cancel();
        onClose({ code: 0, reason: error.message }, false);
      }
    }, delayMs);
  }

  function attempt() {
    cancel();
    if (socket) socket.close(1000); // replaced: its close event is ignored below
    socket = null;
    open = false;
    const [url, protocols] = target();
    const mine = new WebSocket(url, protocols); // throws on a malformed URL or subprotocol
    socket = mine;
    mine.addEventListener("open", () => {
      if (socket !== mine) return;
      open = true;
      onOpen();
    });
    mine.addEventListener("message", (event) => {
      if (socket !== mine) return; // a frame of a connection being replaced
      failures = 0;
      onFrame(event.data);
    });
    mine.addEventListener("close", (event) => {
      if (socket !== mine) return; // replaced by a newer connection
      socket = null;
      open = false;
      // After a reconnect frame the pause is the server's after_ms, whether the server
      // closes first (1001, at its time) or the page's own timer fires first.
      if (wanted && waiting && waiting.why === "restart") {
        onClose(event, true);
        return;
      }
      const retrying = wanted && RETRY_CODES.has(event.code);
      if (retrying) {
        const step = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)];
        failures += 1;
        schedule("lost", event.code, step * (0.5 + Math.random()));
      }
      onClose(event, retrying);
    });
  }

  return {
    /** Connect now (closing the current connection, if any), and keep connected. */
    connect() {
      wanted = true;
      failures = 0;
      attempt();
    },
    /** Close with 1000 and connect no more. */
    disconnect() {
      wanted = false;
      cancel();
      if (socket) socket.close(1000);
    },
    /** The server is about to close this connection for good (after sign_out): do not come back. */
    expectClose() {
      wanted = false;
    },
    /** It did not (the sign_out was refused): keep the connection up again. */
    keep() {
      wanted = true;
    },
    /** The server asks for a new connection in `afterMs` ms (a `reconnect` frame). */
    reconnectAfter(afterMs) {
      if (!wanted) return;
      schedule("restart", null, Math.max(0, afterMs));
    },
    /** Send a message (an object, as JSON) on the open connection; false when none is open. */
    send(message) {
      if (!open) return false;
      socket.send(JSON.stringify(message));
      return true;
    },
    get open() {
      return open;
    },
    /** Whether a connection is open, being opened, or due (so Disconnect has something to stop). */
    get active() {
      return socket !== null || waiting !== null;
    },
    /** The attempt due, or null: `{why, code, inMs}`. */
    get waiting() {
      return waiting && { why: waiting.why, code: waiting.code, inMs: Math.max(0, waiting.at - performance.now()) };
    },
  };
}
