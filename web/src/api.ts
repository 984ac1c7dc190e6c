// Calls to the node's API: the session's CSRF token on every call that
// changes something, a bearer token when the user signed in with one, and
// problem details (RFC 9457) turned into ApiError with the field to blame.

export interface Session {
  account: string;
  display_name: string;
  role: "admin" | "operator" | "member";
  csrf: string;
  streams: string[];
  consumption_stream: string | null;
  /** Signed in with an API token rather than a password. */
  token?: boolean;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public detail: string,
    public field: string | undefined,
    public endpoint: string,
    /** The node has no such route (it predates the endpoint). */
    public missing: boolean,
  ) {
    super(detail);
  }
}

let session: Session | null = null;
const TOKEN_KEY = "fedwatt-token";

export function current(): Session | null {
  return session;
}

export function setSession(s: Session | null): void {
  session = s;
}

export function bearer(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setBearer(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export interface CallOptions {
  body?: unknown;
  raw?: BodyInit;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
}

/** The path without its query, as an endpoint's name in messages. */
function endpointOf(method: string, path: string): string {
  return `${method} ${path.split("?")[0]}`;
}

export async function call(method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: options.accept ?? "application/json" };
  const token = bearer();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (method !== "GET" && method !== "HEAD" && session?.csrf) headers["X-CSRF-Token"] = session.csrf;
  let body: BodyInit | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["Content-Type"] = "application/json";
  }
  if (options.contentType) headers["Content-Type"] = options.contentType;
  const endpoint = endpointOf(method, path);
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body, credentials: "same-origin", signal: options.signal });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, `the node did not answer (${(e as Error).message})`, undefined, endpoint, false);
  }
  if (!response.ok) {
    let detail = response.statusText;
    let field: string | undefined;
    let missing = false;
    const text = await response.text();
    try {
      const problem = JSON.parse(text);
      detail = problem.detail ?? detail;
      field = problem.field;
      missing = response.status === 404 && /no such route/.test(detail);
    } catch {
      // Not a problem document (e.g. a proxy's page): keep the status text.
      missing = response.status === 404 || response.status === 405;
    }
    if (missing) detail = `the node does not offer ${endpoint} (${detail})`;
    throw new ApiError(response.status, detail, field, endpoint, missing);
  }
  return response;
}

export async function json<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const response = await call(method, path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => json<T>("GET", path, { signal });

/** A query string from pairs; arrays repeat their key. */
export function query(params: Record<string, string | number | boolean | null | undefined | (string | number)[]>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, String(v)));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Shapes of the answers the UI reads.
export interface Stream {
  name: string;
  unit: string | null;
  kind: string;
  metadata: Record<string, unknown>;
  owner: string | null;
  open: boolean;
  count: number;
  first: string | null;
  last: string | null;
  origin: string | null;
}

export interface Aggregate {
  every: string;
  tz: string;
  functions: string[];
  buckets: { start: string; end: string }[];
  streams: { name: string; unit: string | null; values: Record<string, (number | null)[]> }[];
}

export interface Profile {
  by: string;
  tz: string;
  functions: string[];
  slots: number;
  streams: { name: string; unit: string | null; values: Record<string, (number | null)[]> }[];
}

export interface SenmlRecord {
  n: string;
  u?: string;
  t: number;
  v?: number;
  vb?: boolean;
  vs?: string;
  s?: number;
}

export async function streams(q?: string): Promise<Stream[]> {
  const answer = await get<{ streams: Stream[] }>(`/api/v1/streams${query({ q })}`);
  return answer.streams;
}

/** Whether the signed-in account may write readings into `stream`. */
export function mayWrite(stream: Stream): boolean {
  const s = session;
  if (!s) return false;
  if (s.token || s.role === "admin" || s.role === "operator") return stream.origin === null;
  return stream.origin === null && (stream.owner === s.account || s.streams.some((p) => matches(p, stream.name)));
}

/** A stream pattern as the node reads it: `*` matches any run of characters. */
export function matches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
