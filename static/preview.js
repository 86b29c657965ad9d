// The preview page: send dropped photos to be classified, show each beside its scores,
// and add one to a category only when asked (nothing is stored before that).
(function () {
  "use strict";

  const form = () => document.getElementById("preview");
  const csrfToken = () => form().querySelector("[name=csrfmiddlewaretoken]").value;
  let files = [];

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
    });
  }

  async function classify(dropped) {
    files = dropped.filter((file) => file.size > 0);
    if (!files.length) return;
    const results = document.getElementById("predictions");
    results.innerHTML = `<p class='subtle'>${gettext("Looking…")}</p>`;
    const data = new FormData();
    files.forEach((file) => data.append("files", file, file.name));
    const response = await post(form().action, data);
    // 503: the server is busy, and its answer says so.
    results.innerHTML = response.ok || response.status === 503 ? await response.text() : `<p class="message message-error">${interpolate(gettext("The server refused the photos (%(status)s)."), { status: response.status }, true)}</p>`;
    // Only photos sent whole and classified carry an index: the browser has no copy of a
    // zip's members, and a refused file has nothing to show.
    results.querySelectorAll(".prediction[data-index]").forEach((card) => {
      const file = files[Number(card.dataset.index)];
      const image = card.querySelector("img");
      if (file) Object.assign(image, { src: URL.createObjectURL(file), alt: file.name });
    });
  }

  // Add to stores the photo in a category, or moves it there if the task holds it
  // already: a second press on another category corrects the first.
  async function addTo(button) {
    const card = button.closest(".prediction");
    const group = button.closest(".add-to");
    const buttons = Array.from(group.querySelectorAll("[data-add-to]"));
    const status = group.querySelector(".add-status");
    const data = new FormData();
    data.append("category", button.dataset.addTo);
    data.append("photo", files[Number(card.dataset.index)]);
    buttons.forEach((each) => (each.disabled = true));
    const response = await post(group.dataset.addUrl, data);
    buttons.forEach((each) => (each.disabled = false));
    if (!response.ok) {
      status.textContent = interpolate(gettext("The server refused the photo (%(status)s)."), { status: response.status }, true);
      return;
    }
    // The answer is the side bar with its new counts (the message comes out of band);
    // its "added" event says what became of the photo.
    htmx.swap(document.getElementById("sidebar"), await response.text(), { swapStyle: "outerHTML" });
    const added = triggered(response, "added");
    status.textContent = added.message || "";
    if (["added", "moved", "already"].includes(added.outcome)) {
      buttons.forEach((each) => each.setAttribute("aria-pressed", String(each === button)));
    }
  }

  function triggered(response, name) {
    try {
      return JSON.parse(response.headers.get("HX-Trigger"))[name] || {};
    } catch {
      return {};
    }
  }

  document.addEventListener("dragover", (event) => {
    if (event.target.closest && event.target.closest("#preview")) {
      event.preventDefault();
      form().classList.add("drop-over");
    }
  });
  document.addEventListener("dragleave", () => form() && form().classList.remove("drop-over"));
  document.addEventListener("drop", (event) => {
    if (!(event.target.closest && event.target.closest("#preview"))) return;
    event.preventDefault();
    form().classList.remove("drop-over");
    classify(Array.from(event.dataTransfer.files));
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("#preview input[type=file]")) {
      classify(Array.from(event.target.files));
      event.target.value = "";
    }
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-add-to]");
    if (button) addTo(button);
  });
})();
