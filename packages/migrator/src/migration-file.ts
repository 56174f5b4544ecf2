import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { MigratorError } from "./errors.js";

/**
 * The largest migration file `up` applies. A file is held in memory as text while it runs
 * (bench/memory: a 50 MB file of 380,000 INSERTs peaks well under the Job's 256Mi limit); past
 * this size it is refused before anything is applied rather than risk the Job being OOM-killed
 * halfway through a history.
 */
export const MAX_MIGRATION_BYTES = 64 * 1024 * 1024;

// Small enough that each decoded chunk dies young (V8's scavenger frees it at once); a 1 MiB chunk
// goes to the old generation and status on a 50 MB file grew to 127 MiB before a full GC ran.
const CHUNK_BYTES = 64 * 1024;
const BOM = [0xef, 0xbb, 0xbf] as const;

/** What reading a file once, in chunks, tells about it without keeping its text. */
export interface FileFacts {
  /** sha256 of the bytes; drizzle-orm's hash for any valid UTF-8 file (it hashes the decoded text). */
  hash: string;
  bytes: number;
  /** The file starts with a UTF-8 byte-order mark, which is dropped from the statements. */
  bom: boolean;
  /** Nothing but whitespace. */
  empty: boolean;
  /** The first line that is not blank, trimmed: where the no-transaction marker lives. */
  firstLine: string;
}

/**
 * Hashes `path` and checks it is UTF-8 in one streamed pass, so neither `status` nor a no-op `up`
 * ever holds a migration's text. drizzle-orm decodes files leniently, turning a stray Latin-1 byte
 * into U+FFFD in table data and identifiers; we refuse the file and name the line instead.
 *
 * @example
 *   const { hash, bytes } = scanMigrationFile("drizzle/0000_init.sql", "drizzle/0000_init.sql");
 */
export function scanMigrationFile(path: string, shown: string): FileFacts {
  const hash = createHash("sha256");
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const buffer = Buffer.alloc(CHUNK_BYTES);
  const fd = openSync(path, "r");
  let bytes = 0;
  let bom = false;
  let empty = true;
  let head = "";
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      const chunk = buffer.subarray(0, n);
      if (bytes === 0) bom = BOM.every((b, i) => chunk[i] === b);
      hash.update(chunk);
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch (cause) {
        throw invalidUtf8(path, shown, cause);
      }
      if (empty && text.trim() !== "") empty = false;
      if (head.length < 4096) head += text.slice(0, 4096);
      bytes += n;
    }
    try {
      decoder.decode();
    } catch (cause) {
      throw invalidUtf8(path, shown, cause);
    }
  } finally {
    closeSync(fd);
  }
  // trim() counts U+FEFF as white space, so a BOM alone is an empty file too.
  if (bom) head = head.slice(1);
  const firstLine = head.trimStart().split("\n", 1)[0]?.trim() ?? "";
  return { hash: hash.digest("hex"), bytes, bom, empty, firstLine };
}

/**
 * The file split at drizzle-kit's breakpoints, as drizzle-orm splits it, minus a leading BOM
 * (PostgreSQL takes U+FEFF for part of the first keyword: `syntax error at or near "﻿CREATE"`),
 * with each piece's UTF-16 offset in the file. Read in chunks and split as it is read, so the text
 * is held once (the pieces) and never beside the file's bytes and a second, whole copy.
 */
export function readStatements(path: string, breakpoint: string): { statements: string[]; offsets: number[] } {
  // ignoreBOM false: the decoder drops a leading BOM itself.
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const buffer = Buffer.alloc(CHUNK_BYTES);
  const statements: string[] = [];
  const offsets: number[] = [];
  let rest = "";
  let searchFrom = 0;
  let offset = 0;
  const cut = () => {
    for (let at = rest.indexOf(breakpoint, searchFrom); at !== -1; at = rest.indexOf(breakpoint)) {
      statements.push(rest.slice(0, at));
      offsets.push(offset);
      offset += at + breakpoint.length;
      rest = rest.slice(at + breakpoint.length);
    }
    // A breakpoint may straddle two chunks: search again from where it could start.
    searchFrom = Math.max(0, rest.length - breakpoint.length + 1);
  };
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      rest += decoder.decode(buffer.subarray(0, n), { stream: true });
      cut();
    }
    rest += decoder.decode();
  } finally {
    closeSync(fd);
  }
  statements.push(rest);
  offsets.push(offset);
  return { statements, offsets };
}

/** Refuses a file too large to apply within the memory the Job is given; see MAX_MIGRATION_BYTES. */
export function assertApplicableSize(file: { file: string; bytes?: number }): void {
  if (file.bytes === undefined || file.bytes <= MAX_MIGRATION_BYTES) return;
  throw new MigratorError(
    "JOURNAL_INVALID",
    `${file.file} is ${mebibytes(file.bytes)}; yomu-migrate applies files up to ${mebibytes(MAX_MIGRATION_BYTES)}, so nothing was applied`,
    {
      details: { file: file.file, bytes: file.bytes, limitBytes: MAX_MIGRATION_BYTES },
      hint: "split the file into several migrations, or load bulk data with COPY outside the migration",
    },
  );
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function invalidUtf8(path: string, shown: string, cause: unknown): MigratorError {
  const { line, byte } = firstInvalidUtf8(readFileSync(path));
  return new MigratorError("JOURNAL_INVALID", `${shown}:${line} is not valid UTF-8 (byte 0x${byte.toString(16).padStart(2, "0")})`, {
    cause,
    details: { file: shown, line },
    hint: "save the file as UTF-8 (drizzle-kit writes UTF-8; a Latin-1 editor or a pasted dump did not)",
  });
}

/** Where the first ill-formed UTF-8 sequence starts: its line, its first byte and that byte's offset. */
export function firstInvalidUtf8(bytes: Uint8Array): { line: number; byte: number; offset: number } {
  let line = 1;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b === 0x0a) line++;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0) return { line, byte: b, offset: i };
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      // The second byte's range is narrower after E0, ED, F0 and F4 (overlongs, surrogates, > U+10FFFF).
      const low = k === 1 && b === 0xe0 ? 0xa0 : k === 1 && b === 0xf0 ? 0x90 : 0x80;
      const high = k === 1 && b === 0xed ? 0x9f : k === 1 && b === 0xf4 ? 0x8f : 0xbf;
      if (c === undefined || c < low || c > high) return { line, byte: b, offset: i };
    }
    i += length;
  }
  return { line, byte: 0, offset: -1 };
}
