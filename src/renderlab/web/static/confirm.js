// "Delete …?" asked in a modal <dialog> (focus kept inside, Escape keeps the thing).

const $ = (id) => document.getElementById(id);

/** Resolves to true when the person pressed Delete. */
export function confirmDelete(title, text) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
    dialog.showModal();
    $("confirm-keep").focus();
  });
}
