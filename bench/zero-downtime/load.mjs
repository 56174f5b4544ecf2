// Steady HTTP load on the API with autocannon, recording every request ourselves so latency can
// be cut into windows (before / during / after the migration) afterwards.
import autocannon from "autocannon";

/**
 * Starts the load and returns at once; `stop()` ends it and resolves when every client is gone.
 * `samples` holds one `{ sent, ms, status, kind }` per response (times from `performance.now()`),
 * `errors` one `{ sent, at, message }` per timeout or connection error.
 *
 * autocannon paces each connection to its share of the rate per wall-clock second, so all of an
 * instance's connections fire together at the top of each second. Several instances started a
 * fraction of a second apart spread those bursts out, which keeps the offered load close to steady.
 *
 * @example
 *   const load = startLoad({ url, rate: 400, connections: 20, userIds, postShare: 0.1, label: "a" });
 *   await sleep(10_000);
 *   await load.stop();
 */
export function startLoad({ url, rate, connections, userIds, postShare, label, instances = 4, timeoutSeconds = 10 }) {
  if (rate < connections) {
    // autocannon gives a connection whose share of overallRate rounds to 0 no limit at all.
    throw new Error(`--rate ${rate} must be at least --connections ${connections}`);
  }
  const samples = [];
  const errors = [];
  const running = [];
  const timers = [];
  let posted = 0;
  let stopped = false;

  const setupRequest = (request, context) => {
    const userId = userIds[Math.floor(Math.random() * userIds.length)];
    if (Math.random() < postShare) {
      context.kind = "POST";
      posted++;
      return {
        ...request,
        method: "POST",
        path: `/users/${userId}/bookmarks`,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url: `https://bench.example/${label}/${posted}`, title: `bench ${posted}` }),
      };
    }
    context.kind = "GET";
    return { ...request, method: "GET", path: `/users/${userId}/bookmarks?limit=20`, headers: {}, body: undefined };
  };

  const base = Math.floor(connections / instances);
  const rateBase = Math.floor(rate / instances);
  for (let i = 0; i < instances; i++) {
    const share = base + (i < connections % instances ? 1 : 0);
    const shareRate = rateBase + (i < rate % instances ? 1 : 0);
    if (share === 0) continue;
    timers.push(
      setTimeout(
        () => {
          if (stopped) return;
          const instance = autocannon({
            url,
            connections: share,
            overallRate: shareRate,
            duration: 24 * 3600,
            timeout: timeoutSeconds,
            requests: [{ setupRequest }],
          });
          const done = new Promise((resolve) => instance.on("done", resolve));
          // Another listener on 'done' keeps autocannon from printing its own summary.
          instance.on("response", (client, status, _bytes, ms) => {
            const now = performance.now();
            samples.push({ sent: now - ms, ms, status, kind: client.requestIterator?.context?.kind ?? "?" });
          });
          instance.on("reqError", (error) => {
            const at = performance.now();
            const timedOut = /timed out/.test(error?.message ?? "");
            errors.push({ at, sent: timedOut ? at - timeoutSeconds * 1000 : at, message: error?.message ?? String(error) });
          });
          running.push({ instance, done });
        },
        Math.round((i * 1000) / instances),
      ),
    );
  }

  return {
    samples,
    errors,
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      for (const { instance } of running) instance.stop();
      await Promise.all(running.map((r) => r.done));
    },
  };
}
