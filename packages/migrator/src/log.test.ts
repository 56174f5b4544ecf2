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

  it("masks known secrets wherever they appear, but not fragments too short to mean anything", () => {
    expect(redact('password authentication failed: "hunter22" tried', ["hunter22"])).toBe('password authentication failed: "***" tried');
    expect(redact("a b", ["a"])).toBe("a b");
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

  it("masks secrets added after it was created, in JSON and pretty lines", () => {
    for (const format of ["json", "pretty"] as const) {
      const lines: string[] = [];
      const log = createLogger({ format, write: (line) => lines.push(line) });
      log.addSecret("s3cr3t-value");
      log({
        event: "migration.failed",
        severity: "ERROR",
        message: "failed for postgres://u:other-pass@h/d",
        error: new Error("bad s3cr3t-value"),
        nested: { url: "s3cr3t-value" },
      });
      expect(lines.join("\n")).not.toMatch(/s3cr3t-value|other-pass/);
    }
  });
});
