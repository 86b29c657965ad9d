// Buttons with data-copy="ID" copy the text of the element with that id. Their words come
// from the JavaScript catalogue (Django's JavaScriptCatalog: gettext).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const text = "value" in source ? source.value : source.textContent;
  try {
    await navigator.clipboard.writeText(text.trim());
    button.textContent = gettext("Copied");
  } catch {
    if (source.select) source.select();
    button.textContent = gettext("Press Ctrl+C");
  }
  setTimeout(() => { button.textContent = gettext("Copy"); }, 2000);
});
