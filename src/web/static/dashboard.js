// The dashboard's only script: pages that ask for it (data-refresh-ms on <body>) fetch
// themselves again now and then and swap in their #live part, so a payment's timeline shows
// events, refunds and disputes as they land without the reader losing their place. The server
// renders (and escapes) every value; this only moves its HTML from one document to another.
(function () {
  'use strict';
  var every = Number(document.body.dataset.refreshMs);
  var live = document.getElementById('live');
  if (!every || !live) return;

  function refresh() {
    fetch(location.href, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        if (response.status === 401) {
          // The session ended: stop, and say so instead of showing stale data as current.
          live.classList.add('stale');
          live.insertAdjacentHTML('afterbegin',
            '<p class="error" role="alert">Signed out: reload the page to sign in again.</p>');
          return null;
        }
        return response.ok ? response.text() : '';
      })
      .then(function (text) {
        if (text === null) return;
        if (text) {
          var fresh = new DOMParser().parseFromString(text, 'text/html').getElementById('live');
          if (fresh && fresh.innerHTML !== live.innerHTML) live.innerHTML = fresh.innerHTML;
        }
        setTimeout(refresh, every);
      })
      .catch(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
