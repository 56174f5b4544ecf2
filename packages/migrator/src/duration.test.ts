import { describe, expect, it } from "vitest";
import { formatDuration, MAX_DURATION_MS, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["250", 250],
    [" 10s ", 10_000],
    ["0s", 0],
  ])("reads %j as %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "s", "5 minutes", "10 s", "-1s", "1d", "1e3", "5m30s", "Infinity", "NaN", "0x10"])("refuses %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  // Regression: 600h parsed, then PostgreSQL refused SET statement_timeout at run time (exit 1
  // after connecting) instead of the configuration check refusing it up front (exit 2).
  it("refuses durations PostgreSQL's int4 timeouts and Node's timers cannot hold", () => {
    expect(parseDuration(`${MAX_DURATION_MS}ms`)).toBe(MAX_DURATION_MS);
    expect(parseDuration(`${MAX_DURATION_MS + 1}ms`)).toBeUndefined();
    expect(parseDuration("600h")).toBeUndefined();
    expect(parseDuration("99999999999999999999h")).toBeUndefined();
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0ms"],
    [999, "999ms"],
    [1234, "1.23s"],
    [12_345, "12.3s"],
    [61_000, "1m1s"],
  ])("shows %i ms as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
