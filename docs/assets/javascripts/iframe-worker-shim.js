/* A Worker for pages opened from disk (file://), where browsers refuse to start one: the
 * worker's script runs in a hidden iframe of the page, and messages go both ways as events.
 *
 * Material for MkDocs runs its search in a Worker; for file:// its offline plugin adds the
 * iframe-worker shim, fetched from unpkg.com, so the search of a site opened from disk needed
 * the network. This file ships with the site instead (its name tells the plugin a shim is
 * there). It covers what the search worker uses: postMessage both ways, message events,
 * importScripts, terminate. Written here because no package offers the shim offline. */
(function () {
  "use strict";
  if (location.protocol !== "file:") {
    return;
  }

  function load(scope, src) {
    return new Promise(function (resolve, reject) {
      var script = scope.document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = function () {
        reject(new Error("could not load " + src));
      };
      scope.document.head.appendChild(script);
    });
  }

  class IFrameWorker extends EventTarget {
    constructor(url) {
      super();
      var worker = this;
      var href = new URL(url, location.href).href;
      this.onmessage = null;
      this.onerror = null;
      this._queue = [];
      this._ready = false;
      this._frame = document.createElement("iframe");
      this._frame.style.display = "none";
      (document.body || document.documentElement).appendChild(this._frame);
      var scope = this._frame.contentWindow;
      // What the worker's script calls as globals: its messages reach this object's listeners.
      scope.postMessage = function (data) {
        setTimeout(function () {
          var event = new MessageEvent("message", { data: data });
          if (typeof worker.onmessage === "function") {
            worker.onmessage(event);
          }
          worker.dispatchEvent(event);
        });
      };
      scope.importScripts = function () {
        var urls = Array.prototype.slice.call(arguments);
        return urls.reduce(function (done, src) {
          return done.then(function () {
            return load(scope, new URL(src, href).href);
          });
        }, Promise.resolve());
      };
      load(scope, href).then(
        function () {
          worker._ready = true;
          worker._queue.splice(0).forEach(function (data) {
            worker.postMessage(data);
          });
        },
        function (error) {
          var event = new ErrorEvent("error", { message: String(error) });
          if (typeof worker.onerror === "function") {
            worker.onerror(event);
          }
          worker.dispatchEvent(event);
        }
      );
    }

    postMessage(data) {
      if (!this._ready) {
        this._queue.push(data);
        return;
      }
      var scope = this._frame.contentWindow;
      setTimeout(function () {
        scope.dispatchEvent(new scope.MessageEvent("message", { data: data }));
      });
    }

    terminate() {
      this._frame.remove();
    }
  }

  window.Worker = IFrameWorker;
})();
