// A form that came back with problems: its error summary (first in <main>) takes the focus, so it is in view and
// read out. The summary's autofocus does this without script; browsers block autofocus in a cross-origin frame
// (an EHR embedding Tandem), so this does it too.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("error-summary");
  if (summary && document.activeElement !== summary) { summary.focus(); }
});
