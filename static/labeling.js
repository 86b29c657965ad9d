// The labeling grid: select photos, move them with keys or by dragging them onto a
// category, and upload dropped files and zips in batches with a progress bar each.
// Without this script the grid is a plain form of checkboxes and still works.
(function () {
  "use strict";

  const BATCH_FILES = 100;
  const BATCH_BYTES = 64 * 1024 * 1024;
  const IMAGE_DRAG = "application/x-vizeapp-images";

  const grid = () => document.getElementById("grid");
  const tiles = () => Array.from(document.querySelectorAll("#tiles .tile"));
  const csrfToken = () => document.querySelector("[name=csrfmiddlewaretoken]").value;
  let anchor = null;

  // Selection ----------------------------------------------------------------------

  function setSelected(tile, selected) {
    tile.querySelector("input[type=checkbox]").checked = selected;
    tile.classList.toggle("selected", selected);
  }

  function selectedTiles() {
    return tiles().filter((tile) => tile.querySelector("input").checked);
  }

  function showSelectionCount() {
    const count = selectedTiles().length;
    const label = document.getElementById("selection-count");
    if (!label) return;
    label.classList.toggle("active", count > 0);
    label.textContent = count
      ? `${count} selected: press 1–9 or drag onto a category to move`
      : "Click a photo to select it; shift-click for a range.";
  }

  function clickTile(tile, event) {
    const all = tiles();
    if (event.shiftKey && anchor && all.includes(anchor)) {
      const [from, to] = [all.indexOf(anchor), all.indexOf(tile)].sort((a, b) => a - b);
      if (!(event.ctrlKey || event.metaKey)) all.forEach((t) => setSelected(t, false));
      all.slice(from, to + 1).forEach((t) => setSelected(t, true));
    } else if (event.ctrlKey || event.metaKey || event.pointerType === "touch") {
      // A finger has no Ctrl key: each tap adds a photo to the selection or takes it out.
      setSelected(tile, !tile.querySelector("input").checked);
      anchor = tile;
    } else {
      const alone = selectedTiles().length === 1 && tile.classList.contains("selected");
      all.forEach((t) => setSelected(t, false));
      setSelected(tile, !alone);
      anchor = tile;
    }
    showSelectionCount();
  }

  function selectAll(selected) {
    tiles().forEach((tile) => setSelected(tile, selected));
    showSelectionCount();
  }

  // Moving and deleting --------------------------------------------------------------

  function moveSelectionTo(target) {
    const form = grid();
    if (!form || target === "all") return;
    if (!selectedTiles().length) {
      flash("Select some photos first.");
      return;
    }
    form.querySelector("select[name=category]").value = target;
    form.requestSubmit(form.querySelector("[data-action=move]"));
  }

  function acceptSelection() {
    const accept = grid().querySelector("[data-action=accept]");
    if (!accept) return;
    if (!selectedTiles().some((tile) => tile.querySelector(".suggestion"))) {
      flash("Select photos that show a suggestion first.");
      return;
    }
    accept.click();
  }

  function keepSelection() {
    const keep = grid().querySelector("[data-action=keep]");
    if (!keep) return;
    if (!selectedTiles().length) {
      flash("Select some photos first.");
      return;
    }
    keep.click();
  }

  function deleteSelection() {
    if (selectedTiles().length) grid().querySelector("[data-action=delete]").click();
  }

  function flash(text) {
    const messages = document.getElementById("messages");
    messages.innerHTML = "";
    const line = document.createElement("p");
    line.className = "message";
    line.textContent = text;
    messages.append(line);
  }

  // Uploading ------------------------------------------------------------------------

  function batchesOf(files) {
    const batches = [];
    let batch = [];
    let bytes = 0;
    for (const file of files) {
      if (batch.length && (batch.length >= BATCH_FILES || bytes + file.size > BATCH_BYTES)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(file);
      bytes += file.size;
    }
    if (batch.length) batches.push(batch);
    return batches;
  }

  function progressRow(label) {
    const row = document.createElement("div");
    row.className = "batch";
    row.innerHTML = "<span></span><progress max='100' value='0'></progress><span>0 %</span>";
    row.firstChild.textContent = label;
    document.getElementById("upload-progress").append(row);
    return row;
  }

  function sendBatch(url, target, files, row) {
    return new Promise((resolve) => {
      const data = new FormData();
      data.append("target", target);
      files.forEach((file) => data.append("files", file, file.name));
      const request = new XMLHttpRequest();
      const [bar, percent] = [row.querySelector("progress"), row.lastChild];
      request.upload.onprogress = (event) => {
        if (!event.lengthComputable) return;
        bar.value = (100 * event.loaded) / event.total;
        percent.textContent = event.loaded < event.total ? `${Math.round(bar.value)} %` : "checking…";
      };
      request.onload = () => {
        if (request.status === 200) {
          bar.value = 100;
          percent.textContent = "done";
          document.getElementById("upload-reports").insertAdjacentHTML("afterbegin", request.responseText);
        } else {
          row.classList.add("failed");
          percent.textContent = `failed (${request.status})`;
          const reason = request.status === 413 ? "too large for the server" : request.responseText.slice(0, 200);
          flash(`A batch of ${files.length} files was refused: ${reason}`);
        }
        resolve();
      };
      request.onerror = () => {
        row.classList.add("failed");
        percent.textContent = "failed";
        flash("The connection to the server was lost during an upload.");
        resolve();
      };
      request.open("POST", url);
      request.setRequestHeader("X-CSRFToken", csrfToken());
      request.setRequestHeader("HX-Request", "true");
      request.send(data);
    });
  }

  async function upload(files, target) {
    if (!files.length) return;
    const url = document.getElementById("upload").action;
    const batches = batchesOf(files);
    document.getElementById("upload-progress").innerHTML = "";
    const rows = batches.map((batch, i) =>
      progressRow(`Batch ${i + 1} of ${batches.length} · ${batch.length} file${batch.length > 1 ? "s" : ""}`)
    );
    for (let i = 0; i < batches.length; i++) {
      await sendBatch(url, target, batches[i], rows[i]);
    }
    refresh();
  }

  function refresh() {
    const here = window.location.pathname + window.location.search;
    htmx.ajax("GET", here, { target: "#sidebar", swap: "outerHTML" });
    htmx.ajax("GET", here, { target: "#grid", swap: "outerHTML" });
  }

  // Files from a drop, with dropped folders walked to their files.
  async function droppedFiles(dataTransfer) {
    const entries = Array.from(dataTransfer.items || [])
      .map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry())
      .filter(Boolean);
    if (!entries.length) return Array.from(dataTransfer.files);
    const files = [];
    async function walk(entry) {
      if (entry.isFile) {
        files.push(await new Promise((ok, fail) => entry.file(ok, fail)));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        let chunk;
        do {
          chunk = await new Promise((ok, fail) => reader.readEntries(ok, fail));
          for (const child of chunk) await walk(child);
        } while (chunk.length);
      }
    }
    for (const entry of entries) await walk(entry);
    return files;
  }

  // Drop targets: side-bar entries take photos dragged from the grid and files from
  // the desktop; the drop zone takes files.
  function isFileDrag(event) {
    return Array.from(event.dataTransfer.types).includes("Files");
  }
  function isImageDrag(event) {
    return Array.from(event.dataTransfer.types).includes(IMAGE_DRAG);
  }

  document.addEventListener("dragstart", (event) => {
    const tile = event.target.closest && event.target.closest(".tile");
    if (!tile) return;
    if (!tile.classList.contains("selected")) {
      tiles().forEach((t) => setSelected(t, false));
      setSelected(tile, true);
      anchor = tile;
      showSelectionCount();
    }
    event.dataTransfer.setData(IMAGE_DRAG, String(selectedTiles().length));
    event.dataTransfer.effectAllowed = "move";
  });

  document.addEventListener("dragover", (event) => {
    const bucket = event.target.closest && event.target.closest("[data-drop-target]");
    const zone = event.target.closest && event.target.closest(".dropzone");
    const accepts =
      (bucket && (isFileDrag(event) || (isImageDrag(event) && bucket.dataset.dropTarget !== "all"))) ||
      (zone && isFileDrag(event));
    if (!accepts) return;
    event.preventDefault();
    (bucket || zone).classList.add("drop-over");
  });

  document.addEventListener("dragleave", (event) => {
    const over = event.target.closest && event.target.closest(".drop-over");
    if (over && !over.contains(event.relatedTarget)) over.classList.remove("drop-over");
  });

  document.addEventListener("drop", async (event) => {
    const bucket = event.target.closest && event.target.closest("[data-drop-target]");
    const zone = event.target.closest && event.target.closest(".dropzone");
    if (!bucket && !zone) return;
    event.preventDefault();
    document.querySelectorAll(".drop-over").forEach((el) => el.classList.remove("drop-over"));
    const target = bucket ? bucket.dataset.dropTarget : zone.querySelector("[name=target]").value;
    if (isImageDrag(event)) {
      moveSelectionTo(target);
    } else if (isFileDrag(event)) {
      upload(await droppedFiles(event.dataTransfer), target);
    }
  });

  // Clicks, keys and htmx ------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const tile = event.target.closest(".tile");
    if (tile && !event.target.closest(".open")) {
      event.preventDefault();
      clickTile(tile, event);
    }
    if (event.target.closest("[data-action=select-all]")) selectAll(true);
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches("#upload input[type=file]")) {
      const form = document.getElementById("upload");
      upload(Array.from(event.target.files), form.querySelector("[name=target]").value);
      event.target.value = "";
    }
  });

  document.addEventListener("submit", (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea, dialog[open]")) return;
    if (!grid()) return;
    if ((event.ctrlKey || event.metaKey) && event.key === "a") {
      event.preventDefault();
      selectAll(true);
    } else if (event.key === "Escape") {
      selectAll(false);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      deleteSelection();
    } else if (event.key.toLowerCase() === "a" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      acceptSelection();
    } else if (event.key.toLowerCase() === "k" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      keepSelection();
    } else if (/^[0-9]$/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      const bucket = document.querySelector(`#sidebar [data-key="${event.key}"]`);
      if (bucket) moveSelectionTo(bucket.dataset.dropTarget);
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "viewer") event.detail.target.showModal();
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const posted = event.detail.requestConfig && event.detail.requestConfig.verb === "post";
    if (posted && event.detail.elt.closest("#grid") && event.detail.successful) {
      selectAll(false);
    }
  });
})();
