/* Segment builder: condition rows inside one AND/OR group, written as JSON into
   the definition textarea (the form's real field), and a live size preview.
   Our own small vanilla script: no library, nothing loaded from another site.
   The textarea (under "Advanced") takes the full nested format; a definition the
   rows cannot show (nested groups) is left to the textarea. */
(function () {
  "use strict";

  var root = document.querySelector("[data-segment-builder]");
  if (!root) { return; }
  var meta = JSON.parse(document.getElementById("segment-builder-meta").textContent);
  var T = meta.text;
  var fields = {};
  meta.fields.forEach(function (f) { fields[f.name] = f; });
  var form = root.closest("form");
  var textarea = form.querySelector("textarea[name=definition]");
  var rowsEl = root.querySelector("[data-role=rows]");
  var groupOp = root.querySelector("[data-role=group-op]");
  var addBtn = root.querySelector("[data-role=add]");
  var nestedNote = root.querySelector("[data-role=nested-note]");
  var preview = document.querySelector("[data-segment-preview]");
  var sizeEl = preview.querySelector("[data-role=size]");
  var sampleEl = preview.querySelector("[data-role=sample]");
  var errorEl = preview.querySelector("[data-role=error]");
  var statusEl = preview.querySelector("[data-role=status]");
  var previewUrl = root.getAttribute("data-preview-url");
  var customerUrl = root.getAttribute("data-customer-url");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var timer = null;
  var sequence = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function select(role, options, value, multiple) {
    var s = el("select", {"data-role": role, "aria-label": T[role] || role});
    var known = options.map(function (o) { return o[0]; });
    var given = multiple ? (value || []) : (value === undefined || value === null || value === "" ? [] : [value]);
    // A stored value the list does not have stays selectable, so loading a definition loses nothing.
    given.forEach(function (v) {
      if (known.indexOf(String(v)) < 0) { options = options.concat([[String(v), String(v) + " " + T.not_listed, true]]); }
    });
    value = multiple ? given.map(String) : (given.length ? String(given[0]) : value);
    if (multiple) { s.multiple = true; s.size = Math.min(options.length, 6); }
    options.forEach(function (o) {
      var opt = el("option", {value: o[0], text: o[1]});
      if (o[2]) { opt.setAttribute("data-unlisted", ""); }
      if (multiple ? (value || []).indexOf(o[0]) >= 0 : o[0] === value) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }

  function input(role, type, value, placeholder, f) {
    var i = el("input", {type: type, "data-role": role, "aria-label": T[role] || role});
    if (type === "number" && f) {
      if (f.min !== null && f.min !== undefined) { i.min = String(f.min); }
      if (f.max !== null && f.max !== undefined) { i.max = String(f.max); }
    }
    if (placeholder) { i.placeholder = placeholder; }
    if (value !== undefined && value !== null) { i.value = String(value); }
    return i;
  }

  function inputType(f) {
    if (f.kind === "datetime") { return "date"; }
    if (f.source === "event" || f.source === "orders" || ["int", "float", "decimal"].indexOf(f.kind) >= 0) { return "number"; }
    return "text";
  }

  function valueControls(f, op, value) {
    var box = el("span", {"class": "builder-value"});
    if (f.kind === "bool") {
      box.appendChild(select("value", [["true", T.yes], ["false", T.no]], value === false ? "false" : "true"));
    } else if (op === "between") {
      var pair = Array.isArray(value) ? value : ["", ""];
      box.appendChild(input("low", inputType(f), pair[0], T.low, f));
      box.appendChild(el("span", {"class": "muted", text: T.and_word}));
      box.appendChild(input("high", inputType(f), pair[1], T.high, f));
    } else if (f.choices.length && (op === "in" || op === "not_in")) {
      box.appendChild(select("value", f.choices, Array.isArray(value) ? value : [], true));
    } else if (f.choices.length && op !== "contains") {
      box.appendChild(select("value", f.choices, Array.isArray(value) ? "" : value, false));
    } else if (op === "in" || op === "not_in") {
      box.appendChild(input("value", "text", Array.isArray(value) ? value.join(", ") : value, T.comma_list));
    } else {
      var start = Array.isArray(value) ? "" : value;
      if (start === undefined && (f.source === "event" || f.source === "orders")) { start = 1; }
      var v = input("value", inputType(f), f.kind === "datetime" && start ? String(start).slice(0, 10) : start, "", f);
      if (inputType(f) === "number") { v.step = f.kind === "int" ? "1" : "any"; }
      box.appendChild(v);
    }
    if (f.source === "event") {
      box.appendChild(el("span", {"class": "muted", text: T.times_of}));
      box.appendChild(select("event_type", meta.event_types, meta.event_types.length ? meta.event_types[0][0] : ""));
      box.appendChild(el("span", {"class": "muted", text: T.within}));
      var days = input("within_days", "number", 30, "", {min: 1, max: 3650});
      days.step = "1";
      box.appendChild(days);
      box.appendChild(el("span", {"class": "muted", "data-role": "unit", text: T.days}));
    }
    if (f.source === "community") {
      // Optional: "" is any role.
      box.appendChild(el("span", {"class": "muted", text: T.role}));
      box.appendChild(select("role", meta.community_roles || [["", ""]], ""));
    }
    if (f.source === "orders") {
      box.appendChild(el("span", {"class": "muted", text: T.from_date}));
      box.appendChild(input("from", "date", ""));
      box.appendChild(el("span", {"class": "muted", text: T.to_date}));
      box.appendChild(input("to", "date", ""));
    }
    return box;
  }

  function drawRow(row, cond) {
    var f = fields[cond.field] || meta.fields[0];
    var op = f.ops.indexOf(cond.op) >= 0 ? cond.op : f.ops[0];
    row.textContent = "";
    var fieldSel = select("field", meta.fields.map(function (x) { return [x.name, x.label]; }), f.name);
    var opSel = select("op", f.ops.map(function (o) { return [o, meta.ops[o] || o]; }), op);
    var values = valueControls(f, op, cond.value);
    var remove = el("button", {type: "button", "class": "btn btn-small", "data-role": "remove", text: T.remove});
    row.appendChild(fieldSel);
    row.appendChild(opSel);
    row.appendChild(values);
    row.appendChild(remove);
    row.setAttribute("data-field", f.name);  // what the controls were drawn for
    var set = function (role, v) {
      var node = row.querySelector("[data-role=" + role + "]");
      if (node && v !== undefined && v !== null) { node.value = String(v).slice(0, role === "from" || role === "to" ? 10 : undefined); }
    };
    if (cond.event_type) {
      // An event type the list does not have is kept as an option of its own.
      row.querySelector("[data-role=event_type]").replaceWith(select("event_type", meta.event_types, cond.event_type));
    }
    if (cond.role !== undefined && row.querySelector("[data-role=role]")) {
      // One role in the list's select; several (from the JSON) in a multiple one, so nothing is lost.
      var many = Array.isArray(cond.role) && cond.role.length > 1;
      var roles = (meta.community_roles || []).filter(function (o) { return !many || o[0] !== ""; });
      var one = Array.isArray(cond.role) ? cond.role[0] : cond.role;
      row.querySelector("[data-role=role]").replaceWith(select("role", roles, many ? cond.role : one, many));
    }
    set("within_days", cond.within_days);
    set("from", cond.from);
    set("to", cond.to);
    fieldSel.addEventListener("change", function () { drawRow(row, {field: fieldSel.value}); sync(); });
    opSel.addEventListener("change", function () { drawRow(row, readRow(row, true)); sync(); });
    remove.addEventListener("click", function () { row.remove(); sync(); });
  }

  function addRow(cond) {
    var row = el("div", {"class": "builder-row", "data-role": "row"});
    rowsEl.appendChild(row);
    drawRow(row, cond || {field: meta.fields[0].name});
    return row;
  }

  function typed(f, raw) {
    var text = String(raw).trim();
    if (f.kind === "bool") { return text === "true"; }
    if (f.source === "event" || f.source === "orders" || ["int", "float", "decimal"].indexOf(f.kind) >= 0) {
      // A number the server can check; anything else goes as typed so its message names the row.
      return text !== "" && !isNaN(Number(text)) ? Number(text) : text;
    }
    return text;
  }

  function readRow(row, keepOpValue) {
    // The field the controls were drawn for: the field select may already show another one
    // (its "input" event comes before the redraw).
    var f = fields[row.getAttribute("data-field")];
    var op = row.querySelector("[data-role=op]").value;
    var cond = {field: f.name, op: op};
    var q = function (role) { return row.querySelector("[data-role=" + role + "]"); };
    if (q("low")) {
      cond.value = [typed(f, q("low").value), typed(f, q("high").value)];
    } else if (q("value") && q("value").multiple) {
      cond.value = Array.prototype.filter.call(q("value").options, function (o) { return o.selected; })
        .map(function (o) { return o.value; });
    } else if (op === "in" || op === "not_in") {
      cond.value = q("value").value.split(/[,，]/).map(function (s) { return s.trim(); })
        .filter(function (s) { return s !== ""; }).map(function (s) { return typed(f, s); });
    } else {
      cond.value = typed(f, q("value").value);
    }
    if (keepOpValue && (op === "between" || op === "in" || op === "not_in") !== Array.isArray(cond.value)) {
      delete cond.value;  // the op changed shape: start the value afresh
    }
    if (f.source === "event") {
      cond.event_type = q("event_type").value.trim();
      cond.within_days = typed(f, q("within_days").value);
    }
    if (f.source === "community" && q("role")) {
      if (q("role").multiple) {
        var picked = Array.prototype.filter.call(q("role").options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
        if (picked.length) { cond.role = picked; }
      } else if (q("role").value) {
        cond.role = q("role").value;
      }
    }
    if (f.source === "orders") {
      if (q("from").value) { cond.from = q("from").value; }
      if (q("to").value) { cond.to = q("to").value; }
    }
    return cond;
  }

  function complete(row) {
    // Every value a row needs is given (the dates of "paid orders" are optional).
    var needed = ["value", "low", "high", "within_days"];
    return needed.every(function (role) {
      var node = row.querySelector("[data-role=" + role + "]");
      if (!node) { return true; }
      if (node.multiple) { return node.selectedOptions.length > 0; }
      return String(node.value).trim() !== "";
    });
  }

  function fromRows() {
    var rows = rowsEl.querySelectorAll("[data-role=row]");
    return {op: groupOp.value, conditions: Array.prototype.map.call(rows, function (r) { return readRow(r, false); })};
  }

  function simple(def) {
    // One group of plain conditions is what the rows can show.
    return def && typeof def === "object" && (def.op === "and" || def.op === "or") && Array.isArray(def.conditions) &&
      def.conditions.every(function (c) { return c && typeof c === "object" && !c.conditions && fields[c.field]; });
  }

  function load(def) {
    rowsEl.textContent = "";
    var ok = simple(def);
    nestedNote.hidden = ok;
    addBtn.disabled = !ok;
    groupOp.disabled = !ok;
    if (!ok) { return; }
    groupOp.value = def.op;
    def.conditions.forEach(function (c) { addRow(c); });
  }

  function sync() {
    textarea.value = JSON.stringify(fromRows(), null, 2);
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(runPreview, 400);
  }

  function show(state, text) {
    statusEl.textContent = text || "";
    preview.setAttribute("data-state", state);
  }

  function runPreview() {
    var def;
    errorEl.textContent = "";
    try { def = JSON.parse(textarea.value); } catch (e) {
      sizeEl.textContent = "—"; sampleEl.textContent = "";
      errorEl.textContent = T.bad_json;
      show("error");
      return;
    }
    if (!def || !Array.isArray(def.conditions) || def.conditions.length === 0) {
      sizeEl.textContent = "—"; sampleEl.textContent = "";
      show("idle", T.add_first);
      return;
    }
    var rows = rowsEl.querySelectorAll("[data-role=row]");
    if (!Array.prototype.every.call(rows, complete)) {
      sizeEl.textContent = "—"; sampleEl.textContent = "";
      sequence++;  // an answer still on its way is for an older definition
      show("idle", T.incomplete);
      return;
    }
    var mine = ++sequence;
    show("loading", T.loading);
    fetch(previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: JSON.stringify({definition: def})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (mine !== sequence) { return; }  // a newer preview is on its way
      if (!result.ok) {
        var err = result.body.error || {};
        var details = err.details || {};
        sizeEl.textContent = "—"; sampleEl.textContent = "";
        errorEl.textContent = details.path ? details.path + ": " + (details.message || err.message) : (err.message || T.failed);
        show("error");
        return;
      }
      sizeEl.textContent = result.body.size.toLocaleString();
      sampleEl.textContent = "";
      result.body.sample.forEach(function (id) {
        sampleEl.appendChild(el("li", {}, [el("a", {href: customerUrl.replace("__id__", encodeURIComponent(id)), text: id})]));
      });
      show("ok", result.body.sample.length ? T.sample : "");
    }).catch(function () {
      if (mine === sequence) { show("error"); errorEl.textContent = T.failed; }
    });
  }

  // The field and op selects redraw their row on "change" (and sync then); every other
  // control writes the definition as it changes.
  var redraws = function (e) { var r = e.target.getAttribute("data-role"); return r === "field" || r === "op"; };
  rowsEl.addEventListener("input", function (e) { if (!redraws(e)) { sync(); } });
  rowsEl.addEventListener("change", function (e) { if (!redraws(e)) { sync(); } });
  groupOp.addEventListener("change", sync);
  addBtn.addEventListener("click", function () {
    var row = addRow();
    sync();
    row.querySelector("[data-role=value]") && row.querySelector("[data-role=value]").focus();
  });
  textarea.addEventListener("input", function () {
    var def = null;
    try { def = JSON.parse(textarea.value); } catch (e) { def = null; }
    if (def !== null) { load(def); }
    schedule();
  });

  var initial = null;
  try { initial = JSON.parse(textarea.value || "null"); } catch (e) { initial = null; }
  load(initial || {op: "and", conditions: []});
  root.hidden = false;
  schedule();
})();
