import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { MigratorError } from "./errors.js";

/**
 * The largest migration file `up` applies. Pieces are read from disk as they are used and the
 * parse keeps no text, so a file of many pieces costs little more than a small one (bench/memory:
 * 50 MB of 380,000 INSERTs peaks at 111 to 137 MiB); past this size the file is refused before
 * anything is applied rather than risk the Job being OOM-killed halfway through a history.
 */
export const MAX_MIGRATION_BYTES = 64 * 1024 * 1024;

/**
 * The largest piece (the text between two breakpoints, sent as one query) `up` applies. One
 * query is held whole several times over while it is read, checked and sent (its string, and
 * the pg client's copies as it writes the message): 16 MB in one piece peaked at 175 MiB, 40 MB at
 * 292 MiB. drizzle-kit writes a breakpoint after every statement unless told not to.
 */
export const MAX_QUERY_BYTES = 8 * 1024 * 1024;

// Small enough that each decoded chunk dies young (V8's scavenger frees it at once); a 1 MiB chunk
// goes to the old generation and status on a 50 MB file grew to 127 MiB before a full GC ran.
const CHUNK_BYTES = 64 * 1024;
const BOM = [0xef, 0xbb, 0xbf] as const;

let scratch: Buffer | undefined;
/**
 * One read buffer for every file the streamed passes below read: each pass is synchronous and
 * keeps nothing of it. A fresh zeroed 64 KiB per file and pass was the largest single item in a
 * CPU profile of reading a 500-migration folder.
 */
function readBuffer(bytes: number): Buffer {
  if (!scratch || scratch.length < bytes) scratch = Buffer.allocUnsafe(bytes);
  return scratch;
}

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
  const buffer = readBuffer(CHUNK_BYTES);
  // A folder or a socket where the journal names a file would otherwise surface as a bare EISDIR.
  if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
    throw new MigratorError("JOURNAL_INVALID", `${shown} is not a file`, {
      hint: "each journal entry needs its .sql file; restore it from git or regenerate with drizzle-kit generate",
    });
  }
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
 * The file split at drizzle-kit's breakpoints, as drizzle-orm splits it (every piece sent, even a
 * blank one), minus a leading BOM (PostgreSQL takes U+FEFF for part of the first keyword:
 * `syntax error at or near "﻿CREATE"`), with each piece's UTF-16 offset in the file.
 *
 * Only where the pieces start is kept; a piece is read from disk (a window of the file at a time)
 * and decoded when it is used, into a string that dies young. So memory does not grow with the
 * file: held as 380,000 strings, a 50 MB file cost 68 MiB of heap, and as bytes 50 MiB.
 */
export function readStatements(
  path: string,
  breakpoint: string,
): { statements: string[]; offsets: number[]; largest: { index: number; bytes: number } } {
  const mark = Buffer.from(breakpoint, "utf8");
  const { starts, size } = pieceStarts(path, mark);
  const end = (i: number) => (i + 1 < starts.length ? (starts[i + 1] as number) - mark.length : size);
  const read = (from: number, length: number): Buffer => {
    const bytes = Buffer.alloc(length);
    const fd = openSync(path, "r");
    try {
      readSync(fd, bytes, 0, bytes.length, from);
    } finally {
      closeSync(fd);
    }
    return bytes;
  };
  let window: { from: number; bytes: Buffer } = { from: 0, bytes: Buffer.alloc(0) };
  const piece = (i: number): string => {
    const from = starts[i] as number;
    const to = end(i);
    if (from < window.from || to > window.from + window.bytes.length) {
      const bytes = read(from, Math.min(Math.max(to - from, WINDOW_BYTES), size - from));
      // A piece longer than the window is read for itself and not kept: held, a 50 MB piece
      // (a file without breakpoints) would cost its size again until the next piece is read.
      if (to - from > WINDOW_BYTES) return bytes.toString("utf8");
      window = { from, bytes };
    }
    return window.bytes.toString("utf8", from - window.from, to - window.from);
  };
  const statements = pieces(starts.length, piece);
  const largest = { index: 0, bytes: 0 };
  for (let i = 0; i < starts.length; i++) {
    const bytes = end(i) - (starts[i] as number);
    if (bytes > largest.bytes) Object.assign(largest, { index: i, bytes });
  }
  let offsets: number[] | undefined;
  return {
    statements,
    largest,
    // Needed only to place an error: counted on first use, in UTF-16 units as JavaScript counts.
    get offsets() {
      if (!offsets) {
        offsets = [];
        let offset = 0;
        for (let i = 0; i < starts.length; i++) {
          offsets.push(offset);
          offset += (statements[i] as string).length + breakpoint.length;
        }
      }
      return offsets;
    },
  };
}

const WINDOW_BYTES = 1024 * 1024;

/** Byte offsets where each piece starts (after a BOM, after each breakpoint), in one streamed pass. */
function pieceStarts(path: string, mark: Buffer): { starts: Float64Array; size: number } {
  const found: number[] = [];
  const buffer = readBuffer(CHUNK_BYTES + mark.length);
  let carried = 0;
  let position = 0;
  let skip = 0;
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buffer, carried, CHUNK_BYTES, null);
      if (n === 0) break;
      // Only bytes read count: the shared buffer holds the last file's beyond them.
      if (position === 0 && n >= BOM.length && BOM.every((b, i) => buffer[i] === b)) skip = BOM.length;
      const filled = carried + n;
      const base = position - carried;
      const chunk = buffer.subarray(0, filled);
      for (let at = chunk.indexOf(mark); at !== -1; at = chunk.indexOf(mark, at + mark.length)) found.push(base + at + mark.length);
      // Keep the tail a breakpoint could straddle into the next chunk, unless it ends one just found.
      const lastEnd = found.length > 0 ? (found[found.length - 1] as number) - base : 0;
      const keep = Math.max(0, Math.min(mark.length - 1, filled - lastEnd));
      buffer.copy(buffer, 0, filled - keep, filled);
      carried = keep;
      position += n;
    }
  } finally {
    closeSync(fd);
  }
  const starts = new Float64Array(found.length + 1);
  starts[0] = skip;
  starts.set(found, 1);
  return { starts, size: position };
}

/**
 * A read-only array whose elements are made on access. Every array method works on it (they read
 * `length` and indices), so callers keep treating statements as the string[] they always were.
 */
function pieces(count: number, piece: (index: number) => string): string[] {
  const index = (key: string | symbol): number | undefined => {
    if (typeof key !== "string") return undefined;
    const i = Number(key);
    return Number.isInteger(i) && i >= 0 && i < count && String(i) === key ? i : undefined;
  };
  const target: string[] = [];
  target.length = count;
  return new Proxy(target, {
    get(t, key, receiver) {
      const i = index(key);
      return i === undefined ? Reflect.get(t, key, receiver) : piece(i);
    },
    has(t, key) {
      return index(key) !== undefined || Reflect.has(t, key);
    },
    ownKeys(t) {
      return [...Array.from({ length: count }, (_, i) => String(i)), ...Reflect.ownKeys(t)];
    },
    getOwnPropertyDescriptor(t, key) {
      const i = index(key);
      return i === undefined
        ? Reflect.getOwnPropertyDescriptor(t, key)
        : { value: piece(i), writable: false, enumerable: true, configurable: true };
    },
    set() {
      return false;
    },
    defineProperty() {
      return false;
    },
    deleteProperty() {
      return false;
    },
  });
}

/**
 * A whole file's text for the commands that read one whole (lint, baseline, down), checked as
 * `scanMigrationFile` checks it for `up`: not UTF-8 is refused naming the line, and a leading BOM
 * is dropped from the text (PostgreSQL would take it for part of the first keyword) and reported.
 *
 * @example
 *   const { text, bom } = readMigrationText("drizzle/0003_add_tags.sql");
 */
export function readMigrationText(path: string, shown: string = path): { text: string; bom: boolean } {
  const bytes = readFileSync(path);
  const bom = BOM.every((b, i) => bytes[i] === b);
  try {
    // ignoreBOM false: the decoder drops a leading BOM, as readStatements does for up.
    return { text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes), bom };
  } catch (cause) {
    throw invalidUtf8(path, shown, cause);
  }
}

/**
 * Refuses a file too large to apply within the memory the Job is given, or one holding a query
 * too large to send (see MAX_MIGRATION_BYTES and MAX_QUERY_BYTES): exit 2, before anything runs.
 */
export function assertApplicableSize(file: {
  file: string;
  tag?: string;
  bytes?: number;
  largestStatement?: { index: number; bytes: number };
}): void {
  if (file.bytes === undefined) return;
  if (file.bytes > MAX_MIGRATION_BYTES) {
    throw new MigratorError(
      "JOURNAL_INVALID",
      `${file.file} is ${mebibytes(file.bytes)}; yomu-migrate applies files up to ${mebibytes(MAX_MIGRATION_BYTES)}, so nothing was applied`,
      {
        details: { file: file.file, bytes: file.bytes, limitBytes: MAX_MIGRATION_BYTES },
        hint: "split the file into several migrations, or load bulk data with COPY outside the migration",
      },
    );
  }
  // Only a file that could hold a piece over the limit is split to find out.
  const largest = file.bytes > MAX_QUERY_BYTES ? file.largestStatement : undefined;
  if (largest === undefined || largest.bytes <= MAX_QUERY_BYTES) return;
  throw new MigratorError(
    "JOURNAL_INVALID",
    `${file.file}: statement ${largest.index + 1}${file.tag ? ` of ${file.tag}` : ""} is ${mebibytes(largest.bytes)} sent as one query, with no \`--> statement-breakpoint\` in it; yomu-migrate sends queries up to ${mebibytes(MAX_QUERY_BYTES)}, so nothing was applied`,
    {
      details: { file: file.file, statement: largest.index + 1, bytes: largest.bytes, limitBytes: MAX_QUERY_BYTES },
      hint: "put `--> statement-breakpoint` between its statements (drizzle-kit writes them unless `breakpoints: false`), or split it into several migrations",
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
