// Kentongan 112 dashboard: the map of kiosks and open tickets (Leaflet, served by the hub).
// Markers are vector circles, not images, so they show whether or not the tiles load: a 112
// centre whose internet link is down still sees where its kiosks and tickets are.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) return;
  var data = JSON.parse(document.getElementById("map-data").textContent);
  // Kabupaten Tangerang, for a fleet with no coordinates yet.
  var home = [-6.2, 106.55];
  var map = L.map(el, { zoomControl: true, preferCanvas: false }).setView(home, 11);
  var tiles = L.tileLayer(el.getAttribute("data-tiles"), {
    maxZoom: 19,
    attribution: el.getAttribute("data-attribution") || ""
  }).addTo(map);
  var failed = 0, loaded = 0;
  tiles.on("tileerror", function () {
    failed++;
    if (!loaded) document.getElementById("map-notiles").classList.remove("hidden");
  });
  tiles.on("tileload", function () {
    loaded++;
    document.getElementById("map-notiles").classList.add("hidden");
  });

  var layer = L.layerGroup().addTo(map);
  var markers = {};
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function draw(d, fit) {
    layer.clearLayers();
    markers = {};
    var bounds = [];
    d.kiosks.forEach(function (k) {
      var m = L.circleMarker([k.lat, k.lon], {
        radius: 8, weight: 3, color: k.flagged ? "#a15c00" : "#ffffff",
        fillColor: k.presence === "online" ? "#2e7d32" : "#757575", fillOpacity: 1
      }).bindPopup("<b>" + esc(k.name) + "</b><br>" + esc(k.place) + "<br>" + esc(k.label))
        // Names stay shown: without tiles they are all the map says about where a kiosk is.
        .bindTooltip(esc(k.name), { permanent: true, direction: "right", offset: [10, 0], className: "kiosk-label" });
      m.addTo(layer);
      markers["k-" + k.id] = m;
      bounds.push([k.lat, k.lon]);
    });
    d.tickets.forEach(function (t, i) {
      // Tickets sit on their kiosk; nudge each a little so that several stay clickable.
      var off = 0.0009 * (i % 6 + 1);
      var m = L.circleMarker([t.lat + off, t.lon + off], {
        radius: 9, weight: 2, color: t.breached ? "#7f0000" : "#ffffff",
        fillColor: t.priority === "emergency" ? "#d32f2f" : "#f9a825", fillOpacity: 0.95,
        className: "ticket-marker"
      }).bindPopup('<a href="/tickets/' + encodeURIComponent(t.id) + '"><b>' + esc(t.number) + "</b></a><br>" +
        esc(t.label) + "<br>" + esc(t.kiosk))
        .bindTooltip(esc(t.number));
      m.addTo(layer);
      markers["t-" + t.id] = m;
      bounds.push([t.lat, t.lon]);
    });
    el.setAttribute("data-markers", String(d.kiosks.length + d.tickets.length));
    if (fit && bounds.length) map.fitBounds(bounds, { padding: [40, 40], maxZoom: 14 });
  }
  draw(data, true);

  // A link such as /map#ciakar-rw03 opens on that kiosk.
  var focus = decodeURIComponent(location.hash.slice(1));
  if (focus && markers["k-" + focus]) {
    map.setView(markers["k-" + focus].getLatLng(), 15);
    markers["k-" + focus].openPopup();
  }

  var pending = null;
  window.kentonganMap = {
    refresh: function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        fetch(el.getAttribute("data-url"), { credentials: "same-origin" }).then(function (r) {
          if (r.status === 401) { location.reload(); return null; }
          return r.ok ? r.json() : null;
        }).then(function (d) { if (d) draw(d, false); });
      }, 300);
    }
  };
})();
