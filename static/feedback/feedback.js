/* Keyboard shortcuts and the canned-reply select of the ticket pages. Every action
   here also works without JavaScript (links, checkboxes, buttons, the "Insert"
   button reloads the page with the reply filled in); this only makes it faster. */
(function () {
  "use strict";

  function isTyping(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // --- the queue: j/k move, Enter opens, x ticks ----------------------------------
  var queue = document.querySelector("[data-queue]");
  var rows = queue ? Array.prototype.slice.call(queue.querySelectorAll("[data-ticket-row]")) : [];
  var current = -1;

  function select(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) {
      rows[current].classList.remove("fb-selected");
      rows[current].removeAttribute("aria-selected");
    }
    current = index;
    rows[current].classList.add("fb-selected");
    rows[current].setAttribute("aria-selected", "true");
    rows[current].scrollIntoView({ block: "nearest" });
  }

  rows.forEach(function (row, index) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, input, button, label, select")) return;
      select(index);
      window.location.href = row.getAttribute("data-href");
    });
  });

  function queueKey(event) {
    if (!rows.length) return false;
    if (event.key === "j") {
      select(current + 1);
    } else if (event.key === "k") {
      select(current < 0 ? 0 : current - 1);
    } else if (event.key === "Enter" && current >= 0) {
      window.location.href = rows[current].getAttribute("data-href");
    } else if (event.key === "x" && current >= 0) {
      var box = rows[current].querySelector('[data-role="select"]');
      if (box) box.checked = !box.checked;
    } else {
      return false;
    }
    return true;
  }

  // --- a ticket: r reply, n note, Ctrl/⌘+Enter sends ------------------------------
  var reply = document.getElementById("id_reply-body");
  var note = document.getElementById("id_note-body");

  function ticketKey(event) {
    if (event.key === "r" && reply) {
      reply.focus();
    } else if (event.key === "n" && note) {
      note.focus();
    } else {
      return false;
    }
    return true;
  }

  function sendFrom(textarea) {
    var form = textarea.form;
    var button = form.querySelector('[data-role="send"], [data-role="add-note"]');
    if (form.requestSubmit) {
      form.requestSubmit(button || undefined);
    } else if (button) {
      button.click();
    } else {
      form.submit();
    }
  }

  // --- "?" shows the list of shortcuts ----------------------------------------------
  var help = document.querySelector('[data-role="shortcuts"]');

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && (target === reply || target === note)) {
      event.preventDefault();
      sendFrom(target);
      return;
    }
    if (event.key === "Escape" && isTyping(target)) {
      target.blur();
      return;
    }
    if (isTyping(target) || event.altKey || event.ctrlKey || event.metaKey) return;
    var handled = false;
    if (event.key === "?" && help) {
      help.open = !help.open;
      handled = true;
    } else {
      handled = queueKey(event) || ticketKey(event);
    }
    if (handled) event.preventDefault();
  });

  // --- canned replies: choosing one fills the reply -----------------------------------
  var cannedForm = document.querySelector('[data-role="canned-form"]');
  if (cannedForm && reply) {
    var picker = cannedForm.querySelector('[data-role="canned"]');
    var error = cannedForm.querySelector('[data-role="canned-error"]');
    var base = cannedForm.getAttribute("data-canned-url");

    var fill = function () {
      var id = picker.value;
      error.hidden = true;
      if (!id) return;
      // An SOP template with fields to fill in: the page asks for them (no JavaScript needed).
      var chosen = picker.options[picker.selectedIndex];
      if (chosen && chosen.hasAttribute("data-fields")) {
        cannedForm.submit();
        return;
      }
      fetch(base.replace(/0$/, id), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.json();
        })
        .then(function (data) {
          if (data.body !== undefined) {
            reply.value = data.body;
            reply.focus();
            cannedForm.setAttribute("data-state", "filled");
          } else {
            error.textContent = (data.error && data.error.message) || "";
            error.hidden = false;
            cannedForm.setAttribute("data-state", "error");
          }
        })
        .catch(function () {
          cannedForm.submit();
        });
    };
    picker.addEventListener("change", fill);
    cannedForm.addEventListener("submit", function (event) {
      event.preventDefault();
      fill();
    });
  }
})();
