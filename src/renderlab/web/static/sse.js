// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, so the page
// reads the stream itself. The parser follows the HTML standard's rules for text/event-stream:
// lines end with CRLF, LF or CR; ":" starts a comment; a blank line dispatches the event; one
// leading space after "field:" is dropped; multi-line data is joined with "\n".

import { ApiError, getJSON, request } from "./api.js";

/** Yields {event, data, id} for each event of a ReadableStream of bytes. */
export async function* parseEventStream(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  let id = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A chunk ending in CR may be the first half of a CRLF: keep it for the next chunk.
      const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(cut);
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: event || "message", data: data.join("\n"), id };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
        else if (field === "id" && !text.includes("\0")) id = text;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

const TERMINAL = new Set(["complete", "failed"]);
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

/**
 * Follows one render until it is complete or failed, calling onUpdate(render) for every state.
 * Reconnects with a growing pause when the stream breaks, reading the render once in between so
 * a change made while disconnected is not missed. Resolves with the final render; rejects with an
 * ApiError for 401/404, or an AbortError when `signal` aborts.
 */
export async function watchRender(renderId, { onUpdate, onReconnect, signal }) {
  const path = `/v1/renders/${encodeURIComponent(renderId)}`;
  let pause = 500;
  for (;;) {
    let last = null;
    try {
      const response = await request(`${path}/events`, { signal, headers: { Accept: "text/event-stream" } });
      for await (const message of parseEventStream(response.body)) {
        if (message.event !== "render") continue;
        last = JSON.parse(message.data);
        pause = 500;
        onUpdate(last);
        if (TERMINAL.has(last.status)) return last;
      }
    } catch (error) {
      if (error.name === "AbortError" || signal?.aborted) throw abortError();
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) throw error;
      // Otherwise the connection broke: fall through, check, and reconnect.
    }
    if (signal?.aborted) throw abortError();
    onReconnect?.();
    await sleep(pause, signal);
    pause = Math.min(pause * 2, 10_000);
    try {
      const render = await getJSON(path, { signal });
      onUpdate(render);
      if (TERMINAL.has(render.status)) return render;
    } catch (error) {
      if (error.name === "AbortError" || signal?.aborted) throw abortError();
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) throw error;
    }
  }
}

function abortError() {
  return new DOMException("The watch was stopped.", "AbortError");
}
