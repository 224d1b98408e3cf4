// The end of a connect opened as a popup by the embedded page: tell the page, then close.
(function () {
  "use strict";
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage("xero-sync:connect-finished", window.location.origin);
    window.close();
  }
})();
