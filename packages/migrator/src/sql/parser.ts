/**
 * The one place SQL is read: PostgreSQL's own parser (libpg-query, the server's grammar compiled
 * to WebAssembly). A migration is parsed once, piece by piece as drizzle sends it, into statements
 * with their node kind, their place in the file and the facts the applier, lint and baseline act
 * on. The WebAssembly module costs ~16 MiB and ~30 ms to load, so it is imported only when a run
 * has something to read (`loadSqlParser`), never by a no-op `up`.
 */
import { setFlagsFromString } from "node:v8";
import type { ScanToken } from "libpg-query";
import { type FilePosition, LineCursor, PieceIndex, Utf8Offsets } from "./position.js";

/** drizzle-kit's separator between statements in a migration file. */
export const STATEMENT_BREAKPOINT = "--> statement-breakpoint";

/** What a statement does to the transaction around it, from PostgreSQL's TransactionStmt kinds. */
export type TransactionKind =
  | "begin"
  | "commit"
  | "rollback"
  | "savepoint"
  | "release"
  | "rollback-to"
  | "prepare"
  | "commit-prepared"
  | "rollback-prepared";

export interface RelationName {
  schema?: string;
  name: string;
}

/** One top-level statement of a migration, as PostgreSQL's parser sees it. */
export interface SqlStatement {
  /** 0-based index of drizzle's piece (the text between breakpoints) holding the statement. */
  piece: number;
  /** The parse node's type, e.g. `IndexStmt`, `TransactionStmt`, `AlterEnumStmt`. */
  kind: string;
  /**
   * The parse node's fields, as libpg-query returns them (see `@pgsql/types`), each `location` in
   * UTF-8 bytes from the start of the piece; empty when parsed with `{ nodes: false }`.
   */
  node: Record<string, unknown>;
  /** UTF-16 offsets of the statement in the file's text, without its `;`. */
  start: number;
  end: number;
  /** Just past the statement's `;`, or `end` when it has none. */
  stop: number;
  text: string;
  /** 1-based line and column (in characters) of `start`. */
  line: number;
  column: number;
  transaction?: TransactionKind;
  /**
   * `CREATE INDEX`, `DROP INDEX` or `REINDEX` with CONCURRENTLY: cannot run in a transaction and
   * waits for every open transaction on its table.
   */
  concurrently: boolean;
  /** The relation the statement names first (a CREATE TABLE's table, an index's table, ...). */
  relation?: RelationName;
  /** For `CREATE INDEX`: the index's name, when it has one (it lives in its table's schema). */
  indexName?: string;
  /** For `ALTER TYPE ... ADD VALUE`: the enum and the value it gains. */
  enumValue?: { type: string[]; value: string };
}

/** A piece PostgreSQL's parser rejects; the server would reject it the same way. */
export interface SqlSyntaxError {
  piece: number;
  line: number;
  column: number;
  message: string;
  /** Why, when it is not the SQL itself: a breakpoint drizzle-kit cut a literal at. */
  cause?: string;
}

export interface ParsedMigration {
  statements: SqlStatement[];
  errors: SqlSyntaxError[];
  /**
   * The file opens or ends transactions itself (BEGIN / START TRANSACTION / COMMIT / ROLLBACK /
   * END / ABORT / PREPARE TRANSACTION at top level), so it is not atomic as a whole and cannot run
   * inside the run's transaction. PL/pgSQL and `BEGIN ATOMIC` bodies are not top level.
   */
  managesTransactions: boolean;
  /** The file adds an enum value, which later statements may use only after a commit (55P04). */
  addsEnumValue: boolean;
  /**
   * UTF-16 offset of each piece in the file's text (the pieces joined by the breakpoint). Counted
   * on first use, like every position below: the parse keeps no text, so a 50 MB file costs no
   * more memory than a small one until an error has to be placed.
   */
  readonly pieceOffsets: readonly number[];
  /**
   * How many statements a piece holds (0 for a blank or comment-only one): how many command
   * completions the server sends for it, by which a failure in a message of several pieces is
   * traced to its piece. Kept only for pieces that do not hold exactly one.
   */
  statementCount(piece: number): number;
  /** UTF-16 offset of a piece's first statement, or of the piece when it has none. */
  pieceStart(piece: number): number;
  /** Line and column of a UTF-16 offset in the file's text. */
  position(offset: number): FilePosition;
  /**
   * Line and column of a 1-based character position counted from the UTF-16 offset `from`, as
   * the server reports it in an error about a query that started there (a query never spans a
   * breakpoint).
   */
  positionAfter(from: number, characterPosition: number): FilePosition;
}

/** A token of PostgreSQL's scanner, with UTF-16 offsets into the text scanned. */
export interface SqlToken {
  start: number;
  end: number;
  text: string;
  /** The scanner's token name: `IDENT`, `SCONST`, `ASCII_40` for `(`, or `UNKNOWN` for keywords. */
  token: string;
  /** `NO_KEYWORD`, `UNRESERVED_KEYWORD`, `COL_NAME_KEYWORD`, `TYPE_FUNC_NAME_KEYWORD` or `RESERVED_KEYWORD`. */
  keyword: string;
}

export interface ParseOptions {
  /**
   * Keep each statement's parse tree (default true). The applier needs only the facts, and a
   * file of a few hundred thousand INSERTs would otherwise hold a tree for each.
   */
  nodes?: boolean;
  /**
   * `facts` keeps only the statements that carry a fact (transaction control, CONCURRENTLY, an
   * enum value added), for a file that runs as one query per piece and needs no more.
   */
  statements?: "all" | "facts";
  /**
   * How long a piece may be before it is parsed a run of statements at a time (default
   * CHUNK_CHARACTERS); the statements and errors are the same either way.
   */
  chunkCharacters?: number;
}

export interface SqlParser {
  /**
   * Parses a migration given as drizzle's pieces (what `readMigrationFiles` returns).
   *
   * @example
   *   const parsed = parser.parseMigration(['CREATE TYPE "mood" AS ENUM (\'a\');']);
   *   parsed.statements[0]?.kind; // "CreateEnumStmt"
   */
  parseMigration(pieces: readonly string[], options?: ParseOptions): ParsedMigration;
  /**
   * PostgreSQL's tokens for `sql`; comments are not tokens.
   *
   * @example
   *   parser.scan("SELECT 1").map((t) => t.text); // ["SELECT", "1"]
   */
  scan(sql: string): SqlToken[];
}

let loading: Promise<SqlParser> | undefined;

/**
 * Loads PostgreSQL's parser once per process; later calls return the same instance.
 *
 * @example
 *   const parser = await loadSqlParser();
 *   parser.parseMigration(migration.statements).managesTransactions;
 */
export function loadSqlParser(): Promise<SqlParser> {
  loading ??= (async () => {
    // V8 recompiles the parser's hot WebAssembly with its optimizing tier after a few hundred
    // statements, which costs ~35 MiB of RSS and more time than it saves on migrations: the
    // baseline compiler alone keeps a 200-migration run near the no-op's memory. It holds for
    // every WebAssembly module compiled after it; the parser is the only one doing real work here.
    setFlagsFromString("--liftoff-only");
    const pg = await import("libpg-query");
    await pg.loadModule();
    return {
      parseMigration: (pieces, options) => parseMigration(pieces, pg.parseSync, options ?? {}),
      scan: (sql) => scan(sql, pg.scanSync),
    };
  })();
  return loading;
}

type ParseSync = typeof import("libpg-query").parseSync;
type ScanSync = typeof import("libpg-query").scanSync;

function parseMigration(pieces: readonly string[], parseSync: ParseSync, options: ParseOptions): ParsedMigration {
  const keepNodes = options.nodes ?? true;
  const factsOnly = options.statements === "facts";
  const chunk = options.chunkCharacters ?? CHUNK_CHARACTERS;
  let managesTransactions = false;
  let addsEnumValue = false;
  const statements: SqlStatement[] = [];
  const errors: SqlSyntaxError[] = [];
  const counts = new Map<number, number>();
  let offset = 0;
  let at: FilePosition = { line: 1, column: 1 };
  let cutLiteral = false;
  // One pass, each piece read once (from disk, for a file the journal reads lazily) and dropped:
  // what the parse keeps is the facts, never the text.
  for (let index = 0; index < pieces.length; index++) {
    const piece = pieces[index] as string;
    const base = offset;
    const lines = new LineCursor(piece, at);
    const end = new LineCursor(piece, at).at(piece.length);
    offset += piece.length + STATEMENT_BREAKPOINT.length;
    at = { line: end.line, column: end.column + STATEMENT_BREAKPOINT.length };
    // The parser refuses an empty query; drizzle sends it, and the server does nothing with it.
    if (piece.trim() === "") {
      counts.set(index, 0);
      continue;
    }
    try {
      let count = 0;
      for (const found of parsePiece(piece, parseSync, chunk, keepNodes)) {
        count++;
        const known = facts(found.kind, found.fields);
        if (known.transaction && CONTROLS_TRANSACTION.has(known.transaction)) managesTransactions = true;
        if (known.enumValue) addsEnumValue = true;
        if (factsOnly && !known.transaction && !known.concurrently && !known.enumValue) continue;
        statements.push({
          piece: index,
          kind: found.kind,
          node: keepNodes ? found.fields : {},
          start: base + found.start,
          end: base + found.end,
          stop: base + found.stop,
          text: piece.slice(found.start, found.end),
          ...lines.at(found.start),
          ...known,
        });
      }
      if (count !== 1) counts.set(index, count);
    } catch (error) {
      if (!(error instanceof PieceSyntaxError)) throw error;
      // The rest of a literal a breakpoint cut fails too; its error says nothing new.
      if (cutLiteral) {
        cutLiteral = false;
        continue;
      }
      const syntaxError: SqlSyntaxError = { piece: index, ...lines.at(error.at), message: error.message };
      cutLiteral = error.message.startsWith("unterminated") && index < pieces.length - 1;
      if (cutLiteral) {
        syntaxError.cause = `the \`${STATEMENT_BREAKPOINT}\` at line ${end.line} is inside a string, quoted name, dollar quote or comment, and drizzle-kit splits the file there as drizzle-orm does, cutting the statement in two`;
      }
      errors.push(syntaxError);
      continue;
    }
    cutLiteral = false;
  }
  let index: PieceIndex | undefined;
  let offsets: number[] | undefined;
  const pieceIndex = () => {
    index ??= new PieceIndex(pieces, STATEMENT_BREAKPOINT);
    return index;
  };
  return {
    statements,
    errors,
    managesTransactions,
    addsEnumValue,
    statementCount: (piece) => counts.get(piece) ?? 1,
    get pieceOffsets() {
      offsets ??= Array.from(pieceIndex().offsets);
      return offsets;
    },
    pieceStart(piece) {
      const from = pieceIndex().offsets[piece] ?? 0;
      const text = pieces[piece] ?? "";
      if (text.trim() === "") return from;
      try {
        return from + (parsePiece(text, parseSync, chunk, false).next().value?.start ?? 0);
      } catch {
        return from;
      }
    },
    position: (offset) => pieceIndex().at(offset),
    positionAfter: (from, characterPosition) =>
      pieceIndex().at(from + codePointOffset(pieceIndex().textFrom(from), Math.max(0, characterPosition - 1))),
  };
}

interface FoundStatement {
  kind: string;
  fields: Record<string, unknown>;
  /** UTF-16 offsets in the piece: first token, end without the `;`, just past the `;`. */
  start: number;
  end: number;
  stop: number;
}

/** What PostgreSQL's parser rejected in a piece, at a UTF-16 offset into it. */
class PieceSyntaxError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

/**
 * Past this many characters a piece is parsed a run of whole statements at a time. libpg-query
 * hands back the parse of its whole input as one JSON string, ~10 times the SQL: `up` on a 5 MB
 * file without breakpoints peaked at 279 MiB parsed whole, 135 MiB in 256 Ki chunks (each parse
 * a multi-megabyte string V8 keeps until a full collection) and 96 MiB in 32 Ki chunks.
 */
const CHUNK_CHARACTERS = 32 * 1024;

/**
 * The top-level statements of one piece, parsed whole or, when it is long, in chunks cut just
 * after a `;` that ends a line. A cut is only a guess, which the parser checks: a chunk that ends
 * inside a string, quoted name, dollar quote, block comment or `BEGIN ATOMIC` body fails to
 * parse "at end of input" or as "unterminated", and is then doubled up to a later cut; one that
 * parses ends between two statements, so its statements are exactly the whole piece's. Any other
 * error is the SQL's own (the parser fails at the first token no text could follow), placed as if
 * the piece had been parsed whole. Throws PieceSyntaxError.
 */
function* parsePiece(piece: string, parseSync: ParseSync, chunkCharacters: number, nodes: boolean): Generator<FoundStatement> {
  let fromBytes = 0;
  for (let from = 0; from < piece.length; ) {
    let size = Math.max(1, chunkCharacters);
    let to = cutAfter(piece, from + size);
    for (;;) {
      const chunk = from === 0 && to === piece.length ? piece : piece.slice(from, to);
      if (chunk.trim() === "") return;
      let result: ReturnType<ParseSync>;
      try {
        result = parseSync(chunk);
      } catch (error) {
        const message = (error as Error).message;
        if (to < piece.length && (message.startsWith("unterminated") || message.endsWith("at end of input"))) {
          size *= 2;
          to = cutAfter(piece, from + size);
          continue;
        }
        const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
        throw new PieceSyntaxError(message, from + codePointOffset(chunk, Math.max(0, details?.cursorPosition ?? 0)));
      }
      for (const found of statementsOf(chunk, result)) {
        if (nodes && fromBytes > 0) shiftLocations(found.fields, fromBytes);
        yield { ...found, start: from + found.start, end: from + found.end, stop: from + found.stop };
      }
      fromBytes += Buffer.byteLength(chunk);
      break;
    }
    from = to;
  }
}

/** Makes a chunk's parse tree count its `location`s from the start of the piece, as a whole parse does. */
function shiftLocations(node: unknown, bytes: number): void {
  if (Array.isArray(node)) {
    for (const item of node) shiftLocations(item, bytes);
    return;
  }
  if (typeof node !== "object" || node === null) return;
  const fields = node as Record<string, unknown>;
  for (const [key, value] of Object.entries(fields)) {
    // -1 is the parser's "no location".
    if (key === "location" && typeof value === "number") {
      if (value >= 0) fields[key] = value + bytes;
    } else shiftLocations(value, bytes);
  }
}

/** Just past the first `;` at the end of a line at or after `at`, or the end of the piece. */
function cutAfter(piece: string, at: number): number {
  if (at >= piece.length) return piece.length;
  for (let i = piece.indexOf(";", at); i !== -1; i = piece.indexOf(";", i + 1)) {
    const next = piece.charCodeAt(i + 1);
    if (next === 0x0a || (next === 0x0d && piece.charCodeAt(i + 2) === 0x0a)) return i + 1;
  }
  return piece.length;
}

/** The top-level statements of one parsed text, with UTF-16 offsets into it. */
function* statementsOf(text: string, result: ReturnType<ParseSync>): Generator<FoundStatement> {
  const bytes = new Utf8Offsets(text);
  for (const raw of result.stmts ?? []) {
    const [kind, fields] = Object.entries(raw.stmt ?? {})[0] ?? ["", {}];
    const from = raw.stmt_location ?? 0;
    // PostgreSQL puts a statement's location at its first token and its length up to its `;`.
    const start = bytes.toUtf16(from);
    const semicolon = raw.stmt_len ? bytes.toUtf16(from + raw.stmt_len) : undefined;
    const end = start + text.slice(start, semicolon ?? text.length).trimEnd().length;
    yield { kind, fields: fields as Record<string, unknown>, start, end, stop: semicolon === undefined ? end : semicolon + 1 };
  }
}

const CONTROLS_TRANSACTION = new Set<TransactionKind>(["begin", "commit", "rollback", "prepare"]);

const TRANSACTION_KINDS: Record<string, TransactionKind> = {
  TRANS_STMT_BEGIN: "begin",
  TRANS_STMT_START: "begin",
  TRANS_STMT_COMMIT: "commit",
  TRANS_STMT_ROLLBACK: "rollback",
  TRANS_STMT_SAVEPOINT: "savepoint",
  TRANS_STMT_RELEASE: "release",
  TRANS_STMT_ROLLBACK_TO: "rollback-to",
  TRANS_STMT_PREPARE: "prepare",
  TRANS_STMT_COMMIT_PREPARED: "commit-prepared",
  TRANS_STMT_ROLLBACK_PREPARED: "rollback-prepared",
};

function facts(
  kind: string,
  node: Record<string, unknown>,
): Pick<SqlStatement, "transaction" | "concurrently" | "relation" | "indexName" | "enumValue"> {
  const out: Pick<SqlStatement, "transaction" | "concurrently" | "relation" | "indexName" | "enumValue"> = { concurrently: false };
  const relation = rangeVar(node.relation);
  if (relation) out.relation = relation;
  switch (kind) {
    case "TransactionStmt": {
      const transaction = TRANSACTION_KINDS[String(node.kind)];
      if (transaction) out.transaction = transaction;
      break;
    }
    case "IndexStmt":
      out.concurrently = node.concurrent === true;
      if (typeof node.idxname === "string") out.indexName = node.idxname;
      break;
    case "DropStmt":
      out.concurrently = node.concurrent === true && node.removeType === "OBJECT_INDEX";
      break;
    case "ReindexStmt":
      out.concurrently = list(node.params).some((p) => (p as { DefElem?: { defname?: string } }).DefElem?.defname === "concurrently");
      break;
    case "AlterEnumStmt":
      if (typeof node.newVal === "string" && node.oldVal === undefined) {
        out.enumValue = {
          type: list(node.typeName).map((n) => String((n as { String?: { sval?: string } }).String?.sval)),
          value: node.newVal,
        };
      }
      break;
  }
  return out;
}

function rangeVar(value: unknown): RelationName | undefined {
  const range = value as { relname?: string; schemaname?: string } | undefined;
  if (typeof range?.relname !== "string") return undefined;
  return range.schemaname ? { schema: range.schemaname, name: range.relname } : { name: range.relname };
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** UTF-16 offset of the `count`-th code point of `text` (the server counts characters). */
function codePointOffset(text: string, count: number): number {
  let units = 0;
  let seen = 0;
  for (const character of text) {
    if (seen >= count) break;
    units += character.length;
    seen++;
  }
  return units;
}

function scan(sql: string, scanSync: ScanSync): SqlToken[] {
  const bytes = new Utf8Offsets(sql);
  return scanSync(sql)
    .tokens.filter((t: ScanToken) => t.tokenName !== "C_COMMENT" && t.tokenName !== "SQL_COMMENT")
    .map((t: ScanToken) => ({
      start: bytes.toUtf16(t.start),
      end: bytes.toUtf16(t.end),
      text: t.text,
      token: t.tokenName,
      keyword: t.keywordName,
    }));
}

export type { FilePosition };
