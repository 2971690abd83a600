// Sign-in. Zero-setup mode (no identity provider): a name field that asks the server for a token
// (POST /v1/auth/token). With an identity provider: paste the provider's JWT, or open the page as
// /#token=<JWT> (a provider's redirect can land there; the fragment never reaches the server).

import { ApiError, postJSON, request, setToken } from "./api.js";

const $ = (id) => document.getElementById(id);

/** "local" or "provider": the server writes it into the page; older servers are asked. */
export async function authMode() {
  const meta = document.querySelector('meta[name="renderlab-auth-mode"]')?.content;
  if (meta === "local" || meta === "provider") return meta;
  try {
    await request("/v1/auth/token", { method: "POST", json: { name: "" } });
    return "local";
  } catch (error) {
    return error instanceof ApiError && error.status === 404 ? "provider" : "local";
  }
}

/** A token handed over in the URL fragment (#token=...), removed from the address bar. */
export function tokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token") || params.get("access_token") || params.get("id_token");
  if (token) window.history.replaceState(null, "", window.location.pathname + window.location.search);
  return token;
}

function showError(slot, input, message) {
  slot.textContent = message;
  slot.hidden = !message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

export class SignIn {
  constructor({ onSignedIn }) {
    this.onSignedIn = onSignedIn;
    this.section = $("signin");
    this.nameForm = $("name-form");
    this.nameInput = $("signin-name");
    this.nameError = $("signin-name-error");
    this.tokenDetails = $("token-details");
    this.tokenSummary = $("token-summary");
    this.tokenForm = $("token-form");
    this.tokenInput = $("signin-token");
    this.tokenError = $("signin-token-error");
    this.nameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.signInWithName();
    });
    this.tokenForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.signInWithToken();
    });
    // A token is one line: Enter signs in, as on the name form (Shift+Enter still breaks a line).
    this.tokenInput.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      this.signInWithToken();
    });
  }

  show(mode, message = "") {
    this.section.hidden = false;
    const local = mode === "local";
    this.nameForm.hidden = !local;
    this.tokenSummary.textContent = local ? "I have a token" : "Sign in with your identity provider's token";
    $("signin-token-hint").textContent = local
      ? "A token from renderlab token NAME. It is kept in this browser until you sign out."
      : "Your identity provider's JWT (RS256). It is kept in this browser until you sign out.";
    if (!local) this.tokenDetails.open = true;
    if (message) {
      if (local && !this.tokenDetails.open) showError(this.nameError, this.nameInput, message);
      else showError(this.tokenError, this.tokenInput, message);
    }
    (local ? this.nameInput : this.tokenInput).focus();
  }

  hide() {
    this.section.hidden = true;
    showError(this.nameError, this.nameInput, "");
    showError(this.tokenError, this.tokenInput, "");
    this.tokenInput.value = "";
  }

  async signInWithName() {
    const button = this.nameForm.querySelector("button");
    const name = this.nameInput.value.trim();
    if (!name) {
      showError(this.nameError, this.nameInput, "Enter a name.");
      this.nameInput.focus();
      return;
    }
    button.disabled = true;
    try {
      const { token } = await postJSON("/v1/auth/token", { name });
      showError(this.nameError, this.nameInput, "");
      setToken(token);
      this.onSignedIn();
    } catch (error) {
      const field = error.fields?.find((f) => f.field === "name");
      showError(this.nameError, this.nameInput, field ? field.message : error.message);
      this.nameInput.focus();
    } finally {
      button.disabled = false;
    }
  }

  signInWithToken() {
    const token = this.tokenInput.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) {
      showError(this.tokenError, this.tokenInput, "Paste a token.");
      this.tokenInput.focus();
      return;
    }
    showError(this.tokenError, this.tokenInput, "");
    setToken(token);
    this.onSignedIn();
  }
}
