/**
 * A small PostgreSQL lexer: enough to split SQL into statements and tokens while stepping over
 * comments, strings, quoted identifiers and dollar-quoted bodies (where PL/pgSQL's own
 * semicolons and BEGIN ... END live). The baseline rewrite and the check for transaction control
 * inside migrations both read SQL through it.
 */

export interface Token {
  kind: "ident" | "string" | "dollar" | "number" | "punct";
  text: string;
  start: number;
  end: number;
}

export interface Statement {
  /** Whitespace and comments before the statement, breakpoints included. */
  leading: string;
  body: string;
  terminator: "" | ";";
  end: number;
}

export function splitStatements(sql: string): Statement[] {
  const tokens = tokenize(sql);
  const statements: Statement[] = [];
  let from = 0;
  let first: Token | undefined;
  let last: Token | undefined;
  let depth = 0;
  for (const token of tokens) {
    if (token.kind === "punct" && token.text === ";" && depth === 0) {
      if (first && last)
        statements.push({ leading: sql.slice(from, first.start), body: sql.slice(first.start, last.end), terminator: ";", end: token.end });
      else statements.push({ leading: sql.slice(from, token.start), body: "", terminator: ";", end: token.end });
      from = token.end;
      first = last = undefined;
      continue;
    }
    if (token.kind === "punct" && token.text === "(") depth++;
    if (token.kind === "punct" && token.text === ")") depth = Math.max(0, depth - 1);
    first ??= token;
    last = token;
  }
  if (first && last)
    statements.push({ leading: sql.slice(from, first.start), body: sql.slice(first.start, last.end), terminator: "", end: last.end });
  return statements;
}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i] as string;
    const next = sql[i + 1];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "-" && next === "-") {
      const eol = sql.indexOf("\n", i);
      i = eol === -1 ? n : eol + 1;
    } else if (ch === "/" && next === "*") {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.startsWith("/*", i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith("*/", i)) {
          depth--;
          i += 2;
        } else {
          i++;
        }
      }
    } else if (ch === "'" || ((ch === "E" || ch === "e") && next === "'")) {
      const start = i;
      const backslashes = ch !== "'";
      i += backslashes ? 2 : 1;
      while (i < n) {
        if (backslashes && sql[i] === "\\") i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
      tokens.push({ kind: "string", text: sql.slice(start, i), start, end: i });
    } else if (ch === '"') {
      const start = i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') break;
        else i++;
      }
      i++;
      tokens.push({ kind: "ident", text: sql.slice(start, i), start, end: i });
    } else if (ch === "$" && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(sql.slice(i, i + 64))) {
      const tag = (/^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64)) as RegExpExecArray)[0];
      const close = sql.indexOf(tag, i + tag.length);
      const end = close === -1 ? n : close + tag.length;
      tokens.push({ kind: "dollar", text: sql.slice(i, end), start: i, end });
      i = end;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(ch)) {
      const start = i;
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[i] as string)) i++;
      tokens.push({ kind: "ident", text: sql.slice(start, i), start, end: i });
    } else if (/[0-9]/.test(ch)) {
      const start = i;
      while (i < n && /[0-9.eE]/.test(sql[i] as string)) i++;
      tokens.push({ kind: "number", text: sql.slice(start, i), start, end: i });
    } else {
      tokens.push({ kind: "punct", text: ch, start: i, end: i + 1 });
      i++;
    }
  }
  return tokens;
}
