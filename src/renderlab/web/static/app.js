// The page: sign in, edit props with a live preview, render, follow progress, download, history.

import {
  ApiError,
  currentToken,
  getJSON,
  loadToken,
  newIdempotencyKey,
  onUnauthorized,
  postJSON,
  setToken,
  tokenName,
} from "./api.js";
import { SignIn, authMode, tokenFromFragment } from "./auth.js";
import { lostFocus } from "./focus.js";
import { clock, timeOfDay } from "./format.js";
import { PropsForm } from "./form.js";
import { History } from "./history.js";
import { fileName } from "./outputs.js";
import { Preview } from "./preview.js";
import { Quota } from "./quota.js";
import { RenderPanel } from "./render.js";

const $ = (id) => document.getElementById(id);
const renderButton = $("render-button");
const renderError = $("render-error");
const RENDER_LABEL = "Render video";
const STARTING_LABEL = "Starting...";

// The generation last stored from the form: rendering the same props again reuses it, so
// re-renders and retries do not fill the history with copies.
let stored = null; // {propsKey, key, id}
let launching = false;

const keyOf = (props, prompt) => JSON.stringify([props, prompt]);

const form = new PropsForm({
  onChange: () => {
    preview.propsChanged();
    renderOptionsChanged();
  },
});
const preview = new Preview({
  form,
  storedStill: (props) =>
    stored && stored.propsKey === JSON.stringify(props) ? `/v1/generations/${encodeURIComponent(stored.id)}/still` : null,
});
const quota = new Quota({ onChange: () => updateRenderButton() });
const panel = new RenderPanel({
  onUpdate: (render) => history.updateRender(render),
  onFinished: () => {
    quota.refresh();
    // "Wait for one to finish" is stale once one has.
    if (renderError.dataset.code === "too_many_concurrent_renders") renderError.hidden = true;
  },
  onRetry: (render) =>
    launch(async () => render.generation_id, { width: render.width, height: render.height }, render.codec ?? "h264", panel.text),
});
const history = new History({
  onEdit: (generation) => {
    form.fill(generation.animation_props, generation.prompt);
    const codec = $("codec");
    const made = generation.latest_render?.codec; // the file type it was last rendered as
    if (made && codec.value !== made && [...codec.options].some((o) => o.value === made)) {
      codec.value = made;
      codec.dispatchEvent(new Event("change"));
    }
    stored = {
      propsKey: JSON.stringify(form.props()),
      key: keyOf(form.props(), form.prompt()),
      id: generation.id,
    };
    $("editor-title").scrollIntoView({ behavior: "smooth", block: "start" });
    $("text").focus({ preventScroll: true });
  },
  onWatch: (render, generation) => showRender(render, generation.animation_props.text),
  onDeleted: ({ renderId, generationId }) => {
    const shown = panel.render;
    if (shown && (shown.id === renderId || shown.generation_id === generationId)) panel.clear();
    if (stored && stored.id === generationId) stored = null;
    quota.refresh();
  },
});
const signIn = new SignIn({ onSignedIn: () => signedIn() });

function showRender(render, text) {
  panel.watch(render, { fileName: fileName(text, render), text });
  $("progress").scrollIntoView({ behavior: "smooth", block: "nearest" });
  // Render was pressed and is disabled while the request runs, which drops keyboard focus to
  // the page: it goes on to the panel's title (announced), next to Cancel, never away from a
  // field being typed in.
  if (lostFocus()) $("progress-title").focus({ preventScroll: true });
}

async function storeGeneration() {
  const props = form.props();
  const prompt = form.prompt();
  const key = keyOf(props, prompt);
  if (stored && stored.key === key) return stored.id;
  const body = { animation_props: props };
  if (prompt !== null) body.prompt = prompt;
  const generation = await postJSON("/v1/generations", body);
  stored = { propsKey: JSON.stringify(props), key, id: generation.id };
  return generation.id;
}

function showRenderError(error) {
  let message = error.message;
  if (error instanceof ApiError && error.code === "too_many_concurrent_renders") {
    message = "You already have as many renders going as this server allows at once: wait for one to finish (or cancel one), then press Render again. This did not use a render.";
  } else if (error instanceof ApiError && error.status === 429) {
    const wait = error.retryAfterMs ?? 0;
    message += ` Next free slot at ${timeOfDay(new Date(Date.now() + wait))} (in ${clock(wait)}).`;
    quota.exhausted(wait);
  }
  renderError.textContent = message;
  renderError.dataset.code = error instanceof ApiError ? error.code : "";
  renderError.hidden = false;
}

/** Render off while a request is on its way or when no render is left this hour. */
function updateRenderButton() {
  const empty = quota.state !== null && quota.state.remaining <= 0;
  renderButton.disabled = launching || empty;
  $("render-hint").hidden = !empty || launching;
  $("render-hint").textContent = empty ? "No renders left right now: Render comes back when a slot frees up (see the countdown above)." : "";
}

// What each file type loses of a transparent background, said before Render is pressed.
const ALPHA_LOST = {
  h264: "H.264 has no transparency: the background will be black; pick WebM or ProRes to keep it.",
  gif: "GIF transparency is on or off: the text's edges will be hard and a fade will show as one step; untick Transparent background, or pick WebM.",
};

function renderOptionsChanged() {
  const transparent = !("background_color" in form.props());
  const lost = transparent ? ALPHA_LOST[form.codec()] : undefined;
  $("alpha-warning").hidden = !lost;
  if (lost) $("alpha-warning").textContent = lost;
  saveDraft();
}

/** Start a render of the generation `getGenerationId()` resolves to, at `size`, as `codec`. */
async function launch(getGenerationId, size, codec, text) {
  launching = true;
  updateRenderButton();
  $("retry-button").disabled = true;
  renderButton.textContent = STARTING_LABEL;
  renderButton.setAttribute("aria-busy", "true");
  renderError.hidden = true;
  const running = panel.active ? { render: panel.render, text: panel.text } : null;
  panel.clear(); // the panel shows this render or nothing: never the previous animation's
  try {
    const generationId = await getGenerationId();
    const body = { generation_id: generationId, ...size };
    if (codec !== "h264") body.codec = codec; // the default; servers without codecs take it
    const render = await postJSON("/v1/renders", body, { headers: { "Idempotency-Key": newIdempotencyKey() } });
    showRender(render, text);
    quota.refresh();
    history.load();
  } catch (error) {
    if (error.name === "AbortError") return;
    if (error instanceof ApiError && error.status === 422 && form.showErrors(error.fields, "")) {
      form.focusFirstError();
      return; // the messages are beside the fields: no second red box
    }
    if (error instanceof ApiError && error.status === 401) return; // back at sign-in
    // Refused while others run: keep following the one that was shown.
    if (running && error instanceof ApiError && error.code === "too_many_concurrent_renders") showRender(running.render, running.text);
    showRenderError(error);
  } finally {
    launching = false;
    $("retry-button").disabled = false;
    renderButton.textContent = RENDER_LABEL;
    renderButton.removeAttribute("aria-busy");
    updateRenderButton();
  }
}

// The form survives a reload (kept in this browser, dropped at sign-out).
const DRAFT_KEY = "renderlab.draft";

function saveDraft() {
  try {
    const draft = {
      props: form.props(),
      prompt: form.prompt(),
      background: form.background(), // kept while Transparent is ticked
      size: $("size").value,
      codec: $("codec").value,
    };
    window.localStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  } catch {
    // storage disabled: nothing to keep
  }
}

function choose(select, value) {
  if ([...select.options].some((option) => option.value === value)) select.value = value;
}

function restoreDraft() {
  try {
    const draft = JSON.parse(window.localStorage.getItem(DRAFT_KEY) || "null");
    if (!draft || typeof draft.props !== "object") return;
    choose($("size"), draft.size);
    choose($("codec"), draft.codec);
    if (typeof draft.background === "string") form.setBackground(draft.background);
    form.fill(draft.props, draft.prompt);
  } catch {
    // a damaged draft: start from the defaults
  }
}

function dropDraft() {
  try {
    window.localStorage.removeItem(DRAFT_KEY);
  } catch {
    // storage disabled
  }
}

for (const id of ["size", "codec"]) {
  $(id).addEventListener("change", () => {
    form.clearError(id);
    form.updateHints();
    renderOptionsChanged();
  });
}

renderButton.addEventListener("click", () => {
  launch(storeGeneration, form.size(), form.codec(), form.props().text);
});

// Enter in a one-line field of the editor renders, as a form's Enter submits it (the Render
// button is in its own card, so the browser would not); Ctrl+Enter or Cmd+Enter in a text box.
// A field with suggestions (the font's list) keeps Enter for choosing one.
$("props-form").addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Enter" || event.isComposing || renderButton.disabled) return;
  const textBox = field instanceof HTMLTextAreaElement;
  const oneLine = field instanceof HTMLInputElement && !field.list && !["checkbox", "radio", "range", "color"].includes(field.type);
  if (textBox ? !(event.ctrlKey || event.metaKey) : !oneLine) return;
  event.preventDefault();
  renderButton.click();
});

$("new-animation").addEventListener("click", () => {
  stored = null;
  panel.clear();
  renderError.hidden = true;
  form.reset();
  $("prompt").focus();
});

/** The server's installed font families for the picker (older servers have no list). */
async function loadFonts() {
  try {
    const { items } = await getJSON("/v1/fonts");
    form.setFonts(items.map((item) => item.family));
  } catch {
    // no list: the picker keeps its default and no fallback warning is shown
  }
}

// True between a new token's arrival and the first answer that accepts it.
let verifying = false;

async function signedIn() {
  verifying = true;
  signIn.hide();
  $("loading").hidden = true;
  $("app").hidden = false;
  $("account").hidden = false;
  $("account-name").textContent = tokenName(currentToken());
  if (lostFocus()) $("prompt").focus({ preventScroll: true }); // the sign-in form it was in is gone
  await quota.refresh(); // also proves the token: a 401 lands back at sign-in
  if (!currentToken()) return;
  verifying = false;
  preview.start();
  await Promise.all([history.load(), resumeRunning(), loadFonts()]);
}

/** After a reload, follow my newest render if it is still running. */
async function resumeRunning() {
  try {
    const { items } = await getJSON("/v1/renders?limit=1");
    const render = items[0];
    if (!render || (render.status !== "pending" && render.status !== "rendering")) return;
    const generation = await getJSON(`/v1/generations/${encodeURIComponent(render.generation_id)}`);
    if (panel.render === null) showRender(render, generation.animation_props.text);
  } catch {
    // nothing to resume: the page works without it
  }
}

function signOut(message = "") {
  setToken(null);
  dropDraft();
  stored = null;
  panel.stop();
  preview.stop();
  quota.stop();
  history.clear();
  $("app").hidden = true;
  $("account").hidden = true;
  panel.clear();
  renderError.hidden = true;
  mode.then((m) => signIn.show(m, message));
}

onUnauthorized((error) =>
  signOut(verifying ? `That token was refused: ${error.message}` : `${error.message} Please sign in again.`),
);
$("sign-out").addEventListener("click", () => signOut());

const mode = authMode();
const handedOver = tokenFromFragment();
if (handedOver) setToken(handedOver);
$("loading").hidden = true;
if (loadToken()) {
  restoreDraft();
  signedIn();
}
else mode.then((m) => signIn.show(m));
