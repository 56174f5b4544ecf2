import { describe, expect, it } from "vitest";
import { loadSqlParser, STATEMENT_BREAKPOINT } from "./parser.js";

const parser = await loadSqlParser();
const sep = `\n${STATEMENT_BREAKPOINT}\n`;

function parse(text: string) {
  return parser.parseMigration(text.split(STATEMENT_BREAKPOINT));
}

/** What an editor shows for the first occurrence of `needle`. */
function editorPosition(text: string, needle: string) {
  const lines = text.slice(0, text.indexOf(needle)).split("\n");
  return { line: lines.length, column: [...(lines.at(-1) ?? "")].length + 1 };
}

describe("parseMigration", () => {
  it("gives each statement its kind, piece, text and place in the file", () => {
    const text = ["CREATE TABLE a (id int);", '-- two lines\n/* and a block */ CREATE TABLE "é🎉" (id int);\nSELECT 1;'].join(sep);
    const parsed = parse(text);
    expect(parsed.pieceOffsets.map((at) => text.slice(at, at + 6))).toEqual(["CREATE", "\n-- tw"]);
    expect(parsed.statements.map((s) => [s.kind, s.piece, s.text])).toEqual([
      ["CreateStmt", 0, "CREATE TABLE a (id int)"],
      ["CreateStmt", 1, 'CREATE TABLE "é🎉" (id int)'],
      ["SelectStmt", 1, "SELECT 1"],
    ]);
    for (const s of parsed.statements) {
      expect(text.slice(s.start, s.end)).toBe(s.text);
      expect({ line: s.line, column: s.column }).toEqual(editorPosition(text, s.text));
    }
    expect(parsed.statements[1]?.relation).toEqual({ name: "é🎉" });
  });

  it.each([
    ["COMMIT;", "commit"],
    ["commit work;", "commit"],
    ["END;", "commit"],
    ["ROLLBACK;", "rollback"],
    ["abort;", "rollback"],
    ["PREPARE TRANSACTION 'x';", "prepare"],
    ["BEGIN;", "begin"],
    ["BEGIN TRANSACTION;", "begin"],
    ["START TRANSACTION ISOLATION LEVEL SERIALIZABLE;", "begin"],
    ["-- tidy up\n/* done */ COMMIT;", "commit"],
  ])("takes %j for transaction control", (text, kind) => {
    const parsed = parse(text);
    expect(parsed.statements[0]?.transaction).toBe(kind);
    expect(parsed.managesTransactions).toBe(true);
  });

  it.each([
    "CREATE TABLE commits (id int);",
    "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; RELEASE s;",
    "INSERT INTO log VALUES ('x; COMMIT;');",
    "INSERT INTO log VALUES (E'it\\'s; COMMIT;');",
    'CREATE TABLE "x;commit" (id int);',
    "-- COMMIT;\nSELECT 1;",
    "/* COMMIT; /* nested */ COMMIT; */ SELECT 1;",
    "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END; $$;",
    "DO $body$ BEGIN COMMIT; END $body$;",
    // PostgreSQL 14's SQL-standard function body: BEGIN ATOMIC is part of CREATE FUNCTION.
    "CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
    "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); SELECT 2; END;",
    "SELECT end_date FROM t;",
  ])("does not take %j for transaction control", (text) => {
    expect(parse(text).managesTransactions).toBe(false);
  });

  it("reads one CREATE FUNCTION with BEGIN ATOMIC as one statement", () => {
    const text = "CREATE FUNCTION one() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND;\nSELECT one();";
    expect(parse(text).statements.map((s) => s.kind)).toEqual(["CreateFunctionStmt", "SelectStmt"]);
  });

  it("sees CONCURRENTLY behind a comment, and only where the server does", () => {
    const kinds = (text: string) => parse(text).statements.map((s) => s.concurrently);
    expect(kinds("/* build it live */ CREATE INDEX CONCURRENTLY i ON t (c);")).toEqual([true]);
    expect(kinds("CREATE /* why */ UNIQUE INDEX\n-- note\nCONCURRENTLY IF NOT EXISTS i ON s.t (c);")).toEqual([true]);
    expect(kinds("DROP INDEX CONCURRENTLY i; REINDEX INDEX CONCURRENTLY i; REINDEX (CONCURRENTLY) TABLE t;")).toEqual([true, true, true]);
    expect(kinds("CREATE INDEX i ON t (c); -- CONCURRENTLY later\nSELECT 'CREATE INDEX CONCURRENTLY';")).toEqual([false, false]);
    const index = parser.parseMigration(['CREATE INDEX CONCURRENTLY "Ix" ON s.t (c);'], { nodes: false }).statements[0];
    expect(index).toMatchObject({ relation: { schema: "s", name: "t" }, indexName: "Ix", node: {} });
  });

  it("names the enum value an ALTER TYPE adds, and not a rename", () => {
    const parsed = parse(`ALTER TYPE "public"."mood" ADD VALUE 'ok' BEFORE 'sad';${sep}ALTER TYPE mood RENAME VALUE 'a' TO 'b';`);
    expect(parsed.statements.map((s) => s.enumValue)).toEqual([{ type: ["public", "mood"], value: "ok" }, undefined]);
    expect(parsed.addsEnumValue).toBe(true);
    expect(parse("ALTER TYPE mood RENAME VALUE 'a' TO 'b';").addsEnumValue).toBe(false);
  });

  it("keeps only the statements with a fact when asked, and each piece's first token", () => {
    const text = ["CREATE TABLE a (id int);", "\n-- note\nALTER TYPE mood ADD VALUE 'x';\nSELECT 1;", "  "].join(STATEMENT_BREAKPOINT);
    const parsed = parser.parseMigration(text.split(STATEMENT_BREAKPOINT), { nodes: false, statements: "facts" });
    expect(parsed.statements.map((s) => s.kind)).toEqual(["AlterEnumStmt"]);
    expect(parsed.addsEnumValue).toBe(true);
    expect([0, 1, 2].map((piece) => text.slice(parsed.pieceStart(piece), parsed.pieceStart(piece) + 5))).toEqual([
      "CREAT",
      "ALTER",
      text.slice(parsed.pieceOffsets[2] ?? 0).slice(0, 5),
    ]);
  });

  it("takes empty pieces (a breakpoint at the end of the file, two in a row) for no statement", () => {
    const parsed = parse(`CREATE TABLE a (id int);${STATEMENT_BREAKPOINT}${STATEMENT_BREAKPOINT}\n${STATEMENT_BREAKPOINT}`);
    expect(parsed.errors).toEqual([]);
    expect(parsed.statements.map((s) => s.kind)).toEqual(["CreateStmt"]);
  });

  it("reports a syntax error at its line and column, after an emoji", () => {
    const text = ["-- café 🎉\nCREATE TABLE a (id int);", "\n-- 🎉🎉 déjà\nSELEC 🎉, x FROM a;"].join(STATEMENT_BREAKPOINT);
    expect(parse(text).errors).toEqual([{ piece: 1, message: 'syntax error at or near "SELEC"', ...editorPosition(text, "SELEC") }]);
  });

  it("names a breakpoint inside a literal as the cause, as drizzle splits there too", () => {
    const text = `INSERT INTO notes VALUES ('before${sep}after');${sep}SELECT 1;`;
    const parsed = parse(text);
    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0]?.message).toMatch(/^unterminated quoted string/);
    expect(parsed.errors[0]?.cause).toMatch(/statement-breakpoint` at line 2 is inside a string/);
    const dollar = parse(`CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$${sep}BEGIN RETURN 1; END $$;`);
    expect(dollar.errors[0]?.message).toMatch(/^unterminated dollar-quoted string/);
    expect(dollar.errors[0]?.cause).toMatch(/inside a string, quoted name, dollar quote or comment/);
  });

  it("turns the server's position inside a piece into the file's line and column", () => {
    const text = ["CREATE TABLE a (id int);", "\n-- 🎉 déjà\nALTER TABLE b\n    ADD COLUMN x nope;"].join(sep);
    const parsed = parse(text);
    const piece = text.split(STATEMENT_BREAKPOINT)[1] ?? "";
    const characterPosition = [...piece.slice(0, piece.indexOf("nope"))].length + 1;
    expect(parsed.positionAfter(parsed.pieceOffsets[1] ?? -1, characterPosition)).toEqual(editorPosition(text, "nope"));
  });
});

describe("a long piece, parsed a run of statements at a time", () => {
  // Every `;` that ends a line is a guess at a cut; the ones inside a literal, a comment or a
  // BEGIN ATOMIC body must be refused by the parser, so the chunks read as the whole piece does.
  const tricky = [
    "CREATE TABLE t (id int, note text);",
    "INSERT INTO t VALUES (1, 'a;\nb;\n');",
    'CREATE TABLE "odd;\nname" (id int);',
    "/* a block;\n comment; */ SELECT 1;",
    "-- a line comment;\nSELECT 2;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN 1;\nEND;\n$$;",
    "CREATE FUNCTION one() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;",
    "BEGIN;\nALTER TYPE mood ADD VALUE 'é🎉';\r\nCOMMIT;",
    "CREATE INDEX CONCURRENTLY i ON t (id);",
  ].join("\n");
  const whole = (text: string) => parser.parseMigration([text], { chunkCharacters: Number.POSITIVE_INFINITY });
  const chunked = (text: string) => parser.parseMigration([text], { chunkCharacters: 1 });

  it("finds the same statements, facts and places as one parse of the whole piece", () => {
    const text = `-- café\n${tricky}\n${tricky}\n-- the end`;
    const expected = whole(text);
    expect(expected.statements).toHaveLength(22);
    expect(chunked(text).statements).toEqual(expected.statements);
    expect(chunked(text).managesTransactions).toBe(true);
    expect(chunked(text).addsEnumValue).toBe(true);
  });

  it("reports a syntax error where one parse of the whole piece does, after chunks that parsed", () => {
    const text = `${tricky}\nSELECT 'é🎉;\n', x FROM;\n${tricky}`;
    expect(whole(text).errors).toHaveLength(1);
    expect(chunked(text).errors).toEqual(whole(text).errors);
    const from = editorPosition(text, "FROM;");
    expect(chunked(text).errors[0]).toMatchObject({ line: from.line, column: from.column + 4, message: 'syntax error at or near ";"' });
  });

  it("reports a literal left open to the end of the piece as one parse does", () => {
    const text = `${tricky}\nINSERT INTO t VALUES (2, 'never;\nclosed);\nSELECT 1;`;
    expect(chunked(text).errors).toEqual(whole(text).errors);
    expect(chunked(text).errors[0]?.message).toMatch(/^unterminated quoted string/);
  });
});

describe("positions, counted only when asked", () => {
  // Pieces that exist only while read, as the journal hands out a large file's: the parse must
  // not keep them, and a position asked afterwards reads them again.
  function counted(pieces: string[]) {
    let reads = 0;
    const lazy = new Proxy(pieces, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    return { lazy, reads: () => reads };
  }

  it("reads each piece once to parse, and places an error in any piece afterwards", () => {
    const pieces = [
      "-- café 🎉\nCREATE TABLE a (id int);\n",
      "\n-- 🎉🎉 déjà\nINSERT INTO a VALUES (1);\n",
      "\nALTER TABLE a ADD COLUMN x nope;",
    ];
    const text = pieces.join(STATEMENT_BREAKPOINT);
    const { lazy, reads } = counted(pieces);
    const parsed = parser.parseMigration(lazy, { nodes: false, statements: "facts" });
    expect(parsed.statements).toEqual([]);
    expect(reads()).toBe(pieces.length);
    expect(parsed.position(text.indexOf("INSERT"))).toEqual(editorPosition(text, "INSERT"));
    expect(parsed.position(parsed.pieceStart(2))).toEqual(editorPosition(text, "ALTER"));
    const piece = pieces[2] ?? "";
    const characterPosition = [...piece.slice(0, piece.indexOf("nope"))].length + 1;
    expect(parsed.positionAfter(parsed.pieceOffsets[2] ?? -1, characterPosition)).toEqual(editorPosition(text, "nope"));
    // Inside a breakpoint, the column runs on from the piece before it.
    const mark = text.indexOf(STATEMENT_BREAKPOINT) + 3;
    expect(parsed.position(mark)).toEqual({ line: 3, column: 4 });
  });
});

describe("scan", () => {
  it("gives PostgreSQL's tokens with UTF-16 offsets, without comments", () => {
    const sql = `/* x */ CREATE TABLE "é🎉" (a int) -- y`;
    const tokens = parser.scan(sql);
    expect(tokens.map((t) => t.text)).toEqual(["CREATE", "TABLE", '"é🎉"', "(", "a", "int", ")"]);
    for (const t of tokens) expect(sql.slice(t.start, t.end)).toBe(t.text);
  });
});
