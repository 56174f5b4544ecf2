import { describe, expect, it } from "vitest";
import { createLogger, redact } from "./log.js";

describe("redact", () => {
  it.each([
    ["postgres://app:hunter22@db:5432/yomu", "postgres://app:***@db:5432/yomu"],
    ["postgresql://app:p%40ss@db/yomu?sslmode=require", "postgresql://app:***@db/yomu?sslmode=require"],
    ["connect failed for postgres://u:x@h/d and postgres://v:y@h/d", "connect failed for postgres://u:***@h/d and postgres://v:***@h/d"],
    ["url=POSTGRES://U:Secret@H/D", "url=POSTGRES://U:***@H/D"],
  ])("masks the password in %j", (text, masked) => {
    expect(redact(text)).toBe(masked);
  });

  it("leaves URLs without a password alone", () => {
    for (const text of ["postgres://app@db/yomu", "http://pushgateway:9091/metrics", "no url here"]) {
      expect(redact(text)).toBe(text);
    }
  });

  it("masks a password in a libpq connection string", () => {
    expect(redact("host=db user=app password=hunter22 dbname=yomu")).toBe("host=db user=app password=*** dbname=yomu");
    expect(redact("password='two words' host=db")).toBe("password=*** host=db");
  });

  it("masks a known secret where it stands as a credential, even in a URL the pattern cannot read", () => {
    expect(redact("postgres://app:pa/ss@db/yomu", ["pa/ss"])).toBe("postgres://app:***@db/yomu");
  });

  // Regression: with the password "migration", "3 pending migration(s)" was printed as "3 pending ***(s)".
  it("leaves the password's word alone in prose", () => {
    expect(redact("3 pending migration(s) on postgres://app:migration@db/yomu", ["migration"])).toBe(
      "3 pending migration(s) on postgres://app:***@db/yomu",
    );
  });
});

describe("createLogger", () => {
  it("writes one JSON object per event with time, severity, message, event and the fields", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", write: (line) => lines.push(line) });
    log({ event: "migration.applied", severity: "NOTICE", message: "applied x", tag: "x", durationMs: 12, big: 10n });
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0] ?? "");
    expect(parsed).toMatchObject({
      severity: "NOTICE",
      message: "applied x",
      event: "migration.applied",
      tag: "x",
      durationMs: 12,
      big: "10",
    });
    expect(Number.isNaN(Date.parse(parsed.time))).toBe(false);
    expect(lines[0]).not.toContain("\n");
  });

  it("masks credentials added after it was created, in JSON and pretty lines, in messages and fields", () => {
    for (const format of ["json", "pretty"] as const) {
      const lines: string[] = [];
      const log = createLogger({ format, write: (line) => lines.push(line) });
      log.addSecret("s3cr3t-value");
      log({
        event: "migration.failed",
        severity: "ERROR",
        message: "failed for postgres://u:other-pass@h/d",
        error: new Error("bad postgres://u:s3cr3t-value@h/d"),
        nested: { conninfo: "host=h password=s3cr3t-value" },
      });
      expect(lines.join("\n")).not.toMatch(/s3cr3t-value|other-pass/);
    }
  });

  it("does not repeat the message's own figures in the pretty extras, and colours only when asked", () => {
    const lines: string[] = [];
    const plain = createLogger({ format: "pretty", write: (line) => lines.push(line) });
    plain({ event: "migration.applied", severity: "NOTICE", message: "applied 0001_x in 12ms", tag: "0001_x", durationMs: 12 });
    expect(lines[0]).toMatch(/• applied 0001_x in 12ms$/);
    expect(lines[0]).not.toContain("\u001b[");
    const coloured = createLogger({ format: "pretty", color: true, write: (line) => lines.push(line) });
    coloured({ event: "migration.slow", severity: "WARNING", message: "slow", durationMs: 40_000, thresholdMs: 30_000, runId: "r" });
    expect(lines[1]).toContain("\u001b[33m! slow");
    expect(lines[1]).toContain("duration=40.0s threshold=30.0s");
    expect(lines[1]).not.toContain("runId");
  });
});
