// Centaur Workflows console: progressive enhancement. Every page works without this script;
// with it, regions marked data-live follow a server-sent event stream that carries them
// re-rendered, "/" jumps to the search box, and focus and typed input are never lost.
(function () {
  'use strict';

  var status = document.getElementById('live-status');

  // busy reports whether replacing region now would take something from the person: focus
  // inside it, or a form in it they have typed into.
  function busy(region) {
    if (region.contains(document.activeElement) && document.activeElement !== region) {
      return true;
    }
    return region.querySelector('form[data-dirty]') !== null;
  }

  function follow(region) {
    var src = region.getAttribute('data-live');
    var label = region.getAttribute('data-live-label') || 'Updated';
    var pending = null;
    var backoff = 2000;

    function apply(html) {
      if (busy(region)) {
        pending = html;
        region.setAttribute('data-stale', '');
        return;
      }
      pending = null;
      region.removeAttribute('data-stale');
      region.innerHTML = html;
      if (status) {
        status.textContent = label + ' at ' + new Date().toLocaleTimeString();
      }
    }

    // Apply a held-back update once the person moves on.
    region.addEventListener('focusout', function () {
      setTimeout(function () {
        if (pending !== null && !busy(region)) {
          apply(pending);
        }
      }, 0);
    });
    region.addEventListener('input', function (e) {
      var form = e.target.form;
      if (form) {
        form.setAttribute('data-dirty', '');
      }
    });

    function connect() {
      var es = new EventSource(src);
      es.addEventListener('update', function (e) {
        backoff = 2000;
        apply(e.data);
      });
      es.addEventListener('signout', function (e) {
        es.close();
        var next = location.pathname + location.search;
        location.href = '/console/sign-in?why=' + encodeURIComponent(e.data || 'expired') + '&next=' + encodeURIComponent(next);
      });
      es.onerror = function () {
        // A closed stream (refused, or the server went away) is retried with a growing pause;
        // the browser reconnects an interrupted one by itself.
        if (es.readyState === EventSource.CLOSED) {
          setTimeout(connect, backoff);
          backoff = Math.min(backoff * 2, 60000);
        }
      };
    }
    connect();
  }

  document.querySelectorAll('[data-live]').forEach(follow);

  // A filter form leaves its empty fields out of the URL, so that links stay short.
  document.querySelectorAll('form.filters').forEach(function (form) {
    form.addEventListener('submit', function () {
      form.querySelectorAll('input, select').forEach(function (field) {
        if (field.name && field.value === '') {
          field.disabled = true;
        }
      });
    });
  });
  // Coming back to the page from the browser's cache, the fields must work again.
  window.addEventListener('pageshow', function () {
    document.querySelectorAll('form.filters [disabled]').forEach(function (field) {
      field.disabled = false;
    });
  });
  document.documentElement.setAttribute('data-live-ready', '');

  // "/" focuses the search box, unless the person is typing somewhere.
  document.addEventListener('keydown', function (e) {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) {
      return;
    }
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      return;
    }
    var search = document.querySelector('input[type="search"]');
    if (search) {
      e.preventDefault();
      search.focus();
      search.select();
    }
  });
})();
