import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { freePort } from "./net.js";

export interface Pushgateway {
  url: string;
  /** The gateway's exposition, parsed into `name{labels} value` samples. */
  samples(): Promise<Sample[]>;
  stop(): Promise<void>;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Starts Debian's prometheus-pushgateway (installed by .ci/run) on a free loopback port, keeping
 * nothing on disk: Debian's build would otherwise load every earlier test run's groups.
 */
export async function startPushgateway(): Promise<Pushgateway> {
  const binary = execFileSync("sh", ["-c", "command -v prometheus-pushgateway || echo /usr/bin/prometheus-pushgateway"]).toString().trim();
  const port = await freePort();
  const child: ChildProcess = spawn(binary, [`--web.listen-address=127.0.0.1:${port}`, "--persistence.file="], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {}
    if (i > 100 || child.exitCode !== null) throw new Error(`prometheus-pushgateway did not start on ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async samples() {
      return parseExposition(await (await fetch(`${url}/metrics`)).text());
    },
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[4]) });
  }
  return samples;
}
