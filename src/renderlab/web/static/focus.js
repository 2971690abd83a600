// Where keyboard focus is, for the parts that hide or disable what held it.

/** Whether keyboard focus fell to the page (its element was hidden, removed or disabled). */
export function lostFocus() {
  const active = document.activeElement;
  return !active || active === document.body || active.disabled || active.closest("[hidden]") !== null;
}
