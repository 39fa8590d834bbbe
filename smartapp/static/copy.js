// The "Copy link" button of a new questionnaire link: copies the link from its read-only field into the
// clipboard, in the browser only (nothing is sent anywhere), and says so. Shown only where scripts run; without
// them the field is still there to select and copy by hand.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy-from"));
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (!field) { return; }
    button.hidden = false;
    function say(text) { if (status) { status.textContent = text; } }
    function bySelection() {
      field.focus();
      field.select();
      field.setSelectionRange(0, field.value.length);
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      say(copied ? "Copied. Paste it into the message to the patient."
                 : "Could not copy: the link is selected, press Ctrl+C (or \u2318C) to copy it.");
    }
    button.addEventListener("click", function () {
      say("");
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () {
          say("Copied. Paste it into the message to the patient.");
        }, bySelection);
      } else {
        bySelection();
      }
    });
  });
});
