// The annotation page. Every piece of model text goes into the page through textContent,
// never innerHTML, so a response containing <script> shows up as text. The server's CSP
// (script-src 'self') blocks inline scripts as a second line of defence.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const CRITERIA = ["helpfulness", "harmlessness", "fluency"];
  const CYCLE = ["", "left", "right", "tie"];
  let csrf = null;
  let current = null; // the pair on screen
  let busy = false;
  let pending = null; // {pair_id, vote_id}: reused when a vote is retried

  function randomId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, body) {
    const headers = {};
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let data = null;
    try {
      data = await r.json();
    } catch (_) {
      data = null;
    }
    if (!r.ok) {
      const e = new Error((data && data.error) || "HTTP " + r.status);
      e.status = r.status;
      throw e;
    }
    return data;
  }

  // Retries network failures (not HTTP errors) with the same body, so the same vote_id.
  async function withRetry(f) {
    const delays = [300, 1000, 2000];
    for (let i = 0; ; i++) {
      try {
        return await f();
      } catch (e) {
        if (e.status !== undefined || i >= delays.length) throw e;
        setStatus("Connection problem, retrying… · 网络问题，重试中…", "");
        await new Promise((r) => setTimeout(r, delays[i]));
      }
    }
  }

  function setStatus(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = kind || "";
  }

  function showLogin(message) {
    csrf = null;
    current = null;
    $("annotate-view").hidden = true;
    $("who").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
    $("login-name").focus();
  }

  function renderProgress(p, canUndo) {
    $("progress").textContent =
      "Done · 已完成 " + p.done + " · To do · 待标注 " + p.remaining + " · Pairs · 总数 " + p.total;
    $("undo").disabled = !canUndo;
  }

  const ROLE_NAMES = { user: "User · 用户", assistant: "Assistant · 助手", system: "System · 系统" };

  function turn(role, content) {
    const div = document.createElement("div");
    div.className = "turn " + (ROLE_NAMES[role] ? role : "other");
    const r = document.createElement("div");
    r.className = "role";
    r.textContent = ROLE_NAMES[role] || String(role);
    const t = document.createElement("div");
    t.className = "text";
    t.textContent = content;
    div.append(r, t);
    return div;
  }

  function resetMarks() {
    for (const c of CRITERIA) setMark(c, "");
    $("comment").value = "";
  }

  function setMark(crit, value) {
    for (const input of document.querySelectorAll('input[name="' + crit + '"]')) {
      input.checked = input.value === value;
    }
  }

  function getMark(crit) {
    const el = document.querySelector('input[name="' + crit + '"]:checked');
    return el ? el.value : "";
  }

  function cycleMark(crit) {
    const i = CYCLE.indexOf(getMark(crit));
    setMark(crit, CYCLE[(i + 1) % CYCLE.length]);
  }

  function marks() {
    const m = {};
    for (const c of CRITERIA) {
      const v = getMark(c);
      if (v) m[c] = v;
    }
    return m;
  }

  function renderPair(pair) {
    const changed = !current || current.pair_id !== pair.pair_id;
    current = pair;
    $("history").replaceChildren(...(pair.history || []).map((m) => turn(m.role, m.content)));
    $("prompt").textContent = pair.prompt;
    $("left").textContent = pair.left;
    $("right").textContent = pair.right;
    if (changed) resetMarks();
    $("task").hidden = false;
    $("done").hidden = true;
    document.body.dataset.pair = pair.pair_id;
  }

  async function loadNext() {
    const d = await api("GET", "/api/next");
    renderProgress(d.progress, d.can_undo);
    if (d.pair) {
      renderPair(d.pair);
    } else {
      current = null;
      $("task").hidden = true;
      $("done").hidden = false;
      document.body.dataset.pair = "";
    }
  }

  function handleError(e) {
    if (e.status === 401) {
      showLogin("Session expired, please log in again · 会话已过期，请重新登录");
      return;
    }
    setStatus("Not saved · 未保存: " + e.message, "error");
  }

  async function vote(choice) {
    if (busy || !current) return;
    busy = true;
    if (!pending || pending.pair_id !== current.pair_id) {
      pending = { pair_id: current.pair_id, vote_id: randomId() };
    }
    const body = {
      pair_id: current.pair_id,
      choice,
      criteria: marks(),
      comment: $("comment").value,
      vote_id: pending.vote_id,
    };
    try {
      const d = await withRetry(() => api("POST", "/api/vote", body));
      pending = null;
      setStatus("Saved · 已保存 ✓ #" + d.seq, "ok");
      await loadNext();
    } catch (e) {
      handleError(e);
      if (e.status === 409 || e.status === 404) {
        try {
          await loadNext();
        } catch (e2) {
          handleError(e2);
        }
      }
    } finally {
      busy = false;
    }
  }

  async function undo() {
    if (busy || $("undo").disabled) return;
    busy = true;
    try {
      const d = await withRetry(() => api("POST", "/api/undo"));
      setStatus("Undone · 已撤销: " + d.undone, "ok");
      await loadNext();
    } catch (e) {
      handleError(e);
    } finally {
      busy = false;
    }
  }

  async function enter(name) {
    $("user").textContent = name;
    $("who").hidden = false;
    $("login-view").hidden = true;
    $("annotate-view").hidden = false;
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
    await loadNext();
  }

  function typingIn(el) {
    if (!el) return false;
    if (el.tagName === "TEXTAREA") return true;
    return el.tagName === "INPUT" && (el.type === "text" || el.type === "password");
  }

  document.addEventListener("keydown", (ev) => {
    if ($("annotate-view").hidden) return;
    if (typingIn(ev.target)) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    if ((ev.ctrlKey || ev.metaKey) && (ev.key === "z" || ev.key === "Z")) {
      ev.preventDefault();
      undo();
      return;
    }
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const act = {
      a: () => vote("left"),
      ArrowLeft: () => vote("left"),
      b: () => vote("right"),
      ArrowRight: () => vote("right"),
      t: () => vote("tie"),
      ArrowDown: () => vote("tie"),
      "=": () => vote("tie"),
      u: () => undo(),
      1: () => cycleMark("helpfulness"),
      2: () => cycleMark("harmlessness"),
      3: () => cycleMark("fluency"),
      c: () => $("comment").focus(),
      "?": () => {
        $("guideline").open = !$("guideline").open;
      },
    }[ev.key.length === 1 ? ev.key.toLowerCase() : ev.key];
    if (act) {
      ev.preventDefault();
      act();
    }
  });

  for (const b of document.querySelectorAll("button.vote")) {
    b.addEventListener("click", () => vote(b.dataset.choice));
  }
  $("undo").addEventListener("click", () => undo());
  $("logout").addEventListener("click", async () => {
    try {
      await api("POST", "/api/logout");
    } catch (_) {
      // The cookie expires anyway.
    }
    showLogin("");
  });
  // The guideline starts open; whether the annotator closed it is remembered.
  const GUIDE_KEY = "rlhf-annotate.guideline-open";
  try {
    if (localStorage.getItem(GUIDE_KEY) === "0") $("guideline").open = false;
  } catch (_) {
    // Storage may be disabled; the guideline then simply starts open.
  }
  $("guideline").addEventListener("toggle", () => {
    try {
      localStorage.setItem(GUIDE_KEY, $("guideline").open ? "1" : "0");
    } catch (_) {
      // Not remembered.
    }
  });
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("login-name").value.trim();
    const token = $("login-token").value.trim();
    try {
      const d = await api("POST", "/api/login", { name, token });
      csrf = d.csrf;
      $("login-token").value = "";
      $("login-error").textContent = "";
      await enter(d.name);
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });

  (async () => {
    try {
      const d = await api("GET", "/api/me");
      csrf = d.csrf;
      await enter(d.name);
    } catch (e) {
      showLogin(e.status === 401 ? "" : e.message);
    }
  })();
})();
