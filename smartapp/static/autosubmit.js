// Submits the authorize form (POST) as soon as the page loads; the button stays for keyboard users.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("authorize");
  if (form) { form.submit(); }
});
