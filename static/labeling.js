// The labeling grid: select photos, move them with keys or by dragging them onto a
// category, and upload dropped files and zips in batches with a progress bar each; a
// cursor that the arrow keys move, so that all of it works from the keyboard; the
// larger view's keys. Without this script the grid is a plain form of checkboxes, the
// larger view a page of links and forms, and both still work.
(function () {
  "use strict";

  const BATCH_FILES = 100;
  const BATCH_BYTES = 64 * 1024 * 1024;
  const IMAGE_DRAG = "application/x-vizeapp-images";

  const grid = () => document.getElementById("grid");
  const tiles = () => Array.from(document.querySelectorAll("#tiles .tile"));
  const csrfToken = () => document.querySelector("[name=csrfmiddlewaretoken]").value;
  const checkboxOf = (tile) => tile.querySelector("input[type=checkbox]");
  const cursorTile = () => document.querySelector("#tiles .tile.cursor");
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
      ? interpolate(
          ngettext(
            "%(count)s selected: press 1–9 or drag onto a category to move",
            "%(count)s selected: press 1–9 or drag onto a category to move",
            count
          ),
          { count: count },
          true
        )
      : gettext("Click a photo to select it; shift-click for a range.");
  }

  // The cursor ----------------------------------------------------------------------

  // Where the cursor was, to put it back when its tile is replaced or moved away.
  let lastCursor = { code: null, index: -1 };

  // One photo of the grid is in the tab order (the cursor's, else the first): Tab enters
  // the grid in one step and leaves it in the next; the arrow keys move within it.
  function rovingTabIndex() {
    const all = tiles();
    const current = cursorTile() || all[0];
    for (const tile of all) {
      checkboxOf(tile).tabIndex = tile === current ? 0 : -1;
      tile.querySelector(".open").tabIndex = -1; // Enter opens the larger view
    }
  }

  function placeCursor(tile, { focus = true, scroll = true } = {}) {
    const all = tiles();
    all.forEach((t) => t.classList.toggle("cursor", t === tile));
    lastCursor = { code: tile.dataset.code, index: all.indexOf(tile) };
    rovingTabIndex();
    if (focus) checkboxOf(tile).focus({ preventScroll: true });
    if (scroll) tile.scrollIntoView({ block: "nearest" });
  }

  // After htmx changed the grid: the cursor on the same photo, else on the one that took
  // its place, focused again if its removal took the focus away.
  function keepCursor() {
    const all = tiles();
    if (!all.length || cursorTile() || lastCursor.index < 0) {
      rovingTabIndex();
      return;
    }
    const same = all.find((tile) => tile.dataset.code === lastCursor.code);
    const lost = !document.activeElement || document.activeElement === document.body;
    placeCursor(same || all[Math.min(lastCursor.index, all.length - 1)], { focus: lost && !openDialog() });
  }

  // The grid's columns as laid out now: how many tiles share the first one's row.
  function columns() {
    const all = tiles();
    const top = all.length ? all[0].offsetTop : 0;
    const first = all.findIndex((tile) => tile.offsetTop !== top);
    return first === -1 ? all.length : first;
  }

  function moveCursor(step, extend) {
    const all = tiles();
    if (!all.length) return;
    const from = all.indexOf(cursorTile());
    const to = from === -1 ? 0 : Math.min(all.length - 1, Math.max(0, from + step));
    if (extend && !anchor) anchor = all[Math.max(from, 0)];
    placeCursor(all[to]);
    if (extend) clickTile(all[to], { shiftKey: true });
  }

  function clickTile(tile, event) {
    const all = tiles();
    if (event.shiftKey && anchor && all.includes(anchor)) {
      const [from, to] = [all.indexOf(anchor), all.indexOf(tile)].sort((a, b) => a - b);
      if (!(event.ctrlKey || event.metaKey)) all.forEach((t) => setSelected(t, false));
      all.slice(from, to + 1).forEach((t) => setSelected(t, true));
    } else if (event.ctrlKey || event.metaKey || event.pointerType === "touch") {
      // A finger has no Ctrl key: each tap adds a photo to the selection or takes it out.
      setSelected(tile, !checkboxOf(tile).checked);
      anchor = tile;
    } else {
      const alone = selectedTiles().length === 1 && tile.classList.contains("selected");
      all.forEach((t) => setSelected(t, false));
      setSelected(tile, !alone);
      anchor = tile;
    }
    if (!tile.classList.contains("cursor")) placeCursor(tile, { scroll: false });
    showSelectionCount();
  }

  function selectAll(selected) {
    tiles().forEach((tile) => setSelected(tile, selected));
    showSelectionCount();
  }

  // Moving and deleting --------------------------------------------------------------

  // The selection, or with none the cursor's photo: what the keys move and delete.
  function selectionOrCursor() {
    if (!selectedTiles().length && cursorTile()) {
      setSelected(cursorTile(), true);
      showSelectionCount();
    }
    return selectedTiles().length > 0;
  }

  function moveSelectionTo(target) {
    const form = grid();
    if (!form || target === "all") return;
    if (!selectionOrCursor()) {
      flash(gettext("Select some photos first."));
      return;
    }
    form.querySelector("select[name=category]").value = target;
    form.requestSubmit(form.querySelector("[data-action=move]"));
  }

  function acceptSelection() {
    const accept = grid().querySelector("[data-action=accept]");
    if (!accept) return;
    if (!selectedTiles().some((tile) => tile.querySelector(".suggestion"))) {
      flash(gettext("Select photos that show a suggestion first."));
      return;
    }
    accept.click();
  }

  function keepSelection() {
    const keep = grid().querySelector("[data-action=keep]");
    if (!keep) return;
    if (!selectedTiles().length) {
      flash(gettext("Select some photos first."));
      return;
    }
    keep.click();
  }

  function deleteSelection() {
    if (selectionOrCursor()) grid().querySelector("[data-action=delete]").click();
  }

  // The Undo of the notice the last move or delete left (templates/_undo.html).
  function undoLast() {
    const button = (openDialog() || document).querySelector("form.undo button");
    if (!button) {
      flash(gettext("Nothing to undo."));
      return;
    }
    htmx.process(button.closest("form")); // swapped in a moment ago, htmx may not have yet
    button.click();
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
    row.innerHTML = "<span></span><progress max='100' value='0'></progress><span></span>";
    row.firstChild.textContent = label;
    row.lastChild.textContent = interpolate(gettext("%(percent)s %%"), { percent: 0 }, true);
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
        percent.textContent = event.loaded < event.total ? interpolate(gettext("%(percent)s %%"), { percent: Math.round(bar.value) }, true) : gettext("checking…");
      };
      request.onload = () => {
        if (request.status === 200) {
          bar.value = 100;
          percent.textContent = gettext("done");
          document.getElementById("upload-reports").insertAdjacentHTML("afterbegin", request.responseText);
        } else {
          row.classList.add("failed");
          percent.textContent = interpolate(gettext("failed (%(status)s)"), { status: request.status }, true);
          const reason = request.status === 413 ? gettext("too large for the server") : request.responseText.slice(0, 200);
          flash(interpolate(
            ngettext("A batch of %(count)s file was refused: %(reason)s", "A batch of %(count)s files was refused: %(reason)s", files.length),
            { count: files.length, reason: reason },
            true
          ));
        }
        resolve();
      };
      request.onerror = () => {
        row.classList.add("failed");
        percent.textContent = gettext("failed");
        flash(gettext("The connection to the server was lost during an upload."));
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
      progressRow(interpolate(
        ngettext("Batch %(number)s of %(batches)s · %(count)s file", "Batch %(number)s of %(batches)s · %(count)s files", batch.length),
        { number: i + 1, batches: batches.length, count: batch.length },
        true
      ))
    );
    for (let i = 0; i < batches.length; i++) {
      await sendBatch(url, target, batches[i], rows[i]);
    }
    refresh();
  }

  function refresh() {
    reload(grid() ? ["#sidebar", "#grid"] : ["#sidebar"]);
  }

  function refreshGrid() {
    if (grid()) reload(["#grid"]); // not on the larger view's own page
  }

  // Parts of the page are loaded again one at a time, and those asked for meanwhile once
  // more after. htmx keeps only the last request waiting behind one in flight from the
  // same element (here the body): two uploads ending close together lost the side bar's
  // reload to the grid's, and its counts stayed behind.
  let askedMeanwhile = null;

  async function reload(parts) {
    if (askedMeanwhile) {
      parts.forEach((part) => askedMeanwhile.add(part));
      return;
    }
    askedMeanwhile = new Set();
    const here = window.location.pathname + window.location.search;
    for (const part of parts) {
      await htmx
        .ajax("GET", here, { target: part, swap: "outerHTML" })
        .catch(() => flash(gettext("The page could not be brought up to date: reload it.")));
    }
    const again = [...askedMeanwhile];
    askedMeanwhile = null;
    if (again.length) reload(again);
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
    const skip = event.target.closest(".skip-link[href='#tiles']");
    if (skip && tiles().length) {
      event.preventDefault();
      placeCursor(cursorTile() || tiles()[0]);
      return;
    }
    const tile = event.target.closest(".tile");
    // A click on the checkbox itself (Space, or assistive technology) toggles it natively.
    if (tile && !event.target.closest(".open") && event.target !== checkboxOf(tile)) {
      event.preventDefault();
      clickTile(tile, event);
    }
    if (event.target.closest("[data-action=select-all]")) selectAll(true);
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches(".tile input[type=checkbox]")) {
      const tile = event.target.closest(".tile");
      tile.classList.toggle("selected", event.target.checked);
      anchor = tile;
      showSelectionCount();
    }
    if (event.target.matches("#upload input[type=file]")) {
      const form = document.getElementById("upload");
      upload(Array.from(event.target.files), form.querySelector("[name=target]").value);
      event.target.value = "";
    }
  });

  document.addEventListener("focusin", (event) => {
    const tile = event.target.closest("#tiles .tile");
    if (tile && !tile.classList.contains("cursor")) placeCursor(tile, { focus: false });
  });

  document.addEventListener("submit", (event) => {
    const question =
      (event.submitter && event.submitter.dataset.confirm) || (event.target.dataset && event.target.dataset.confirm);
    if (question && !window.confirm(question)) event.preventDefault();
    // The notice's Undo over the grid is answered in place: the counts of the page it
    // returns to (task_detail answers them to htmx), then the grid loaded again.
    if (!event.defaultPrevented && event.target.matches("#messages form.undo") && grid()) {
      event.preventDefault();
      htmx.ajax("POST", event.target.action, { source: event.target, target: "#sidebar", swap: "outerHTML" });
    }
  });

  // Keys typed into a field are its own; a photo's checkbox takes the grid's keys.
  function typesText(target) {
    return target.closest("select, textarea, [contenteditable]") || (target.matches("input") && !target.closest(".tile"));
  }

  const openDialog = () => document.querySelector("#viewer[open]");

  // The larger view shown now: in the dialog over the grid, or as a page of its own.
  function imageView() {
    const dialog = openDialog();
    if (dialog) return dialog.querySelector(".image-view");
    return grid() ? null : document.querySelector(".image-view");
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || typesText(event.target)) return;
    const view = imageView();
    if (view) imageViewKey(event, view);
    else if (grid()) gridKey(event);
  });

  function gridKey(event) {
    const plain = !event.ctrlKey && !event.metaKey && !event.altKey;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const onGrid = event.target.closest("#tiles") || event.target === document.body;
    const arrows = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() };
    // A grid swapped in a moment ago is taken up by htmx when it settles; a key pressed
    // before that would send its form without htmx, and load the whole page.
    htmx.process(grid());
    if (onGrid && plain && key in arrows) {
      event.preventDefault();
      moveCursor(arrows[key], event.shiftKey);
    } else if (onGrid && plain && (key === "Home" || key === "End")) {
      event.preventDefault();
      moveCursor(key === "Home" ? -Infinity : Infinity, event.shiftKey);
    } else if (onGrid && plain && key === "Enter" && cursorTile()) {
      event.preventDefault();
      cursorTile().querySelector(".open").click();
    } else if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      undoLast();
    } else if ((event.ctrlKey || event.metaKey) && key === "a") {
      event.preventDefault();
      selectAll(true);
    } else if (key === "Escape") {
      selectAll(false);
    } else if (key === "Delete" || key === "Backspace") {
      event.preventDefault();
      deleteSelection();
    } else if (plain && key === "a") {
      acceptSelection();
    } else if (plain && key === "k") {
      keepSelection();
    } else if (plain && /^[0-9]$/.test(key)) {
      const bucket = document.querySelector(`#sidebar [data-key="${key}"]`);
      if (bucket) moveSelectionTo(bucket.dataset.dropTarget);
    }
  }

  // The larger view: the same keys as its links and buttons.
  function imageViewKey(event, view) {
    const plain = !event.ctrlKey && !event.metaKey && !event.altKey;
    const press = (selector) => {
      const control = view.querySelector(selector);
      if (!control || control.disabled) return;
      event.preventDefault();
      // htmx takes up what it swaps in when it settles: a key pressed before that would
      // send the form itself, and leave the grid for the view's own page.
      htmx.process(view);
      control.click();
    };
    if (plain && event.key === "ArrowLeft") press("a[rel=prev]");
    else if (plain && event.key === "ArrowRight") press("a[rel=next]");
    else if (plain && /^[0-9]$/.test(event.key)) press(`.move-to [data-key="${event.key}"]`);
    else if (plain && (event.key === "Delete" || event.key === "Backspace")) press("[data-action=delete]");
    else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undoLast();
    }
  }

  // What a POST changes beyond what htmx swaps in: noted before it is sent, as the form
  // that sent it may be swapped away with the answer, and its events with it. A photo
  // moved or deleted in the larger view: the grid behind it is loaded again when it
  // closes. An undo from the notice: the grid is loaded again at once.
  let viewerChanged = false;
  let undoRequest = null;

  document.addEventListener("htmx:beforeRequest", (event) => {
    const config = event.detail.requestConfig;
    if (!config || config.verb !== "post") return;
    const from = event.detail.elt;
    if (from.closest("#viewer")) viewerChanged = true;
    else if (from.closest("form.undo")) undoRequest = event.detail.xhr;
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target.id !== "viewer") return;
    if (!target.open) target.showModal();
    target.querySelector(".image-view").focus();
  });

  document.addEventListener(
    "close",
    (event) => {
      if (event.target.id !== "viewer" || !viewerChanged) return;
      viewerChanged = false;
      refreshGrid();
    },
    true // close does not bubble
  );

  document.addEventListener("htmx:afterSettle", (event) => {
    if (undoRequest && event.detail.xhr === undoRequest) {
      undoRequest = null;
      refreshGrid();
    }
    keepCursor();
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const posted = event.detail.requestConfig && event.detail.requestConfig.verb === "post";
    if (posted && event.detail.successful && event.detail.elt.closest("#grid")) selectAll(false);
  });

  rovingTabIndex();
})();
