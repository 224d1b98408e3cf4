// Xero's sign-in never loads inside a frame: when this page is embedded, Connect and
// Reconnect open Xero in a popup, and the page reloads when the popup says it is done.
// Without this script the links still work, in the top-level window.
(function () {
  "use strict";
  var framed;
  try { framed = window.top !== window.self; } catch (e) { framed = true; }
  if (!framed) { return; }
  document.querySelectorAll("a.connect").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var popup = window.open(link.href, "xero-connect", "popup,width=620,height=760");
      if (popup) { event.preventDefault(); }
    });
  });
  window.addEventListener("message", function (event) {
    if (event.origin === window.location.origin && event.data === "xero-sync:connect-finished") {
      window.location.reload();
    }
  });
})();
