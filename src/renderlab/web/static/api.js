// The HTTP API, as the page uses it: a bearer token kept in this browser, JSON in and out,
// and every failure turned into an ApiError that carries the API's own sentence.

const TOKEN_KEY = "renderlab.token";

let token = null;
let unauthorizedHandler = () => {};

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = extra.fields || [];
    this.retryAfterMs = extra.retryAfterMs ?? null;
  }
}

export function loadToken() {
  try {
    token = window.localStorage.getItem(TOKEN_KEY);
  } catch {
    token = null; // storage disabled: the token lives as long as the page
  }
  return token;
}

export function setToken(value) {
  token = value || null;
  try {
    if (token) window.localStorage.setItem(TOKEN_KEY, token);
    else window.localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: keep it in memory only
  }
}

export function currentToken() {
  return token;
}

/** Called with the ApiError when a request that carried a token is answered 401. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Who a JWT says it is (its `name` or `sub` claim), without verifying it: display only. */
export function tokenName(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) =>
      c.charCodeAt(0),
    );
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return String(claims.name || claims.email || claims.sub || "you");
  } catch {
    return "you";
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back to the status line below
  }
  const detail = (body && body.error) || {};
  let retryAfterMs = detail.retry_after_ms ?? null;
  const header = response.headers.get("Retry-After");
  if (retryAfterMs === null && header && /^\d+$/.test(header)) retryAfterMs = Number(header) * 1000;
  const message =
    detail.message || `The server answered ${response.status} ${response.statusText}.`.trim();
  return new ApiError(response.status, detail.code || "error", message, {
    fields: Array.isArray(detail.fields) ? detail.fields : [],
    retryAfterMs,
  });
}

/**
 * fetch() with the bearer token; resolves to the Response when it is 2xx, else throws ApiError.
 * An aborted request rethrows the AbortError so callers can ignore it.
 */
export async function request(path, { method = "GET", json, signal, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", "The server could not be reached. Check that it is running and try again.");
  }
  if (response.ok) return response;
  const error = await errorFrom(response);
  if (response.status === 401 && sent.Authorization) unauthorizedHandler(error);
  throw error;
}

export async function getJSON(path, options) {
  return (await request(path, options)).json();
}

export async function postJSON(path, json, options = {}) {
  return (await request(path, { ...options, method: "POST", json })).json();
}

export function newIdempotencyKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
