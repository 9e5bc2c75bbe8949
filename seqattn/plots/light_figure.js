// Light renderer for seqattn's plotly figures in exported notebooks (nbconvert HTML), offline and
// without plotly.js: bar, scatter (lines, markers, text) and heatmap traces on side-by-side panels,
// with frames, Play/Pause and a slider. seqattn.plots.export embeds it once per figure and calls
// render(root, figure). Text is set with textContent only: names are user text.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const BOTTOM_ROOM = 40, COLOURBAR_ROOM = 34, CHAR_PX = 6;
  // plotly's default colorway: a trace without its own colour gets the one JupyterLab shows it in
  const COLORWAY = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52"];
  const VIRIDIS = [[0, "#440154"], [0.5, "#21918c"], [1, "#fde725"]];

  function el(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // Plotly text: "<br>" breaks lines, other tags are dropped, entities are decoded (as plotly.js shows them).
  function lines(text) {
    const decode = (s) => s.replace(/<[^>]*>/g, "")
      .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(+n))
      .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&");
    return String(text === undefined || text === null ? "" : text).split(/<br\s*\/?>/i).map(decode);
  }

  function label(parent, x, y, text, attrs) {
    const node = el("text", Object.assign({x: x, y: y, "font-size": 12}, attrs || {}), parent);
    lines(text).forEach((line, i) => el("tspan", {x: x, dy: i ? "1.2em" : 0}, node, line));
    return node;
  }

  function merge(target, source) {  // plotly's frame merge: objects deep, arrays and values replaced
    for (const [k, v] of Object.entries(source)) {
      if (v && typeof v === "object" && !Array.isArray(v) && target[k] && typeof target[k] === "object"
          && !Array.isArray(target[k])) merge(target[k], v);
      else target[k] = v;
    }
    return target;
  }

  const copy = (value) => JSON.parse(JSON.stringify(value));
  const finite = (v) => typeof v === "number" && isFinite(v);
  const present = (v) => finite(v) || typeof v === "string";  // a point to draw: a number or a category
  const pick = (value, i, fallback) => Array.isArray(value) ? (value[i] === undefined ? fallback : value[i])
    : (value === undefined ? fallback : value);

  function colourAt(scale, t) {
    t = Math.min(Math.max(t, 0), 1);
    let i = 1;
    while (i < scale.length - 1 && scale[i][0] < t) i++;
    const [t0, c0] = scale[i - 1], [t1, c1] = scale[i];
    const a = rgb(c0), b = rgb(c1), f = t1 > t0 ? (t - t0) / (t1 - t0) : 0;
    return "rgb(" + a.map((v, j) => Math.round(v + f * (b[j] - v))).join(",") + ")";
  }

  function rgb(colour) {
    if (colour[0] === "#") {
      const h = colour.length === 4 ? colour.replace(/#(.)(.)(.)/, "#$1$1$2$2$3$3") : colour;
      return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    }
    return (colour.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3).map(Number);
  }

  function niceTicks(lo, hi, count) {
    const span = Math.abs(hi - lo) || 1, raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const ticks = [];
    for (let v = Math.ceil(Math.min(lo, hi) / step) * step; v <= Math.max(lo, hi) + 1e-9 * span; v += step) {
      ticks.push(Math.abs(v) < 1e-12 * span ? 0 : v);
    }
    return ticks;
  }

  const axisName = (ref, letter) => letter + "axis" + (ref && ref.length > 1 ? ref.slice(1) : "");

  // Axes: category or linear, their data range, and their pixel extent (scaleanchor shrinks a panel to square units).
  function buildAxes(fig, box) {
    const axes = {};
    const axis = (name) => {
      if (axes[name]) return axes[name];
      const a = axes[name] = Object.assign({name: name, lo: Infinity, hi: -Infinity}, fig.layout[name] || {});
      a.categories = a.categoryorder === "array" && Array.isArray(a.categoryarray) ? a.categoryarray.map(String) : [];
      return a;
    };
    for (const trace of fig.data) {
      const x = axis(axisName(trace.xaxis || "x", "x")), y = axis(axisName(trace.yaxis || "y", "y"));
      x.used = y.used = true;
      if (trace.type === "heatmap") {
        const z = trace.z || [], dx = trace.dx || 1, dy = trace.dy || 1, x0 = trace.x0 || 0, y0 = trace.y0 || 0;
        const cols = Math.max(0, ...z.map((row) => row.length));
        x.lo = Math.min(x.lo, x0 - dx / 2); x.hi = Math.max(x.hi, x0 + (cols - 0.5) * dx);
        y.lo = Math.min(y.lo, y0 - dy / 2); y.hi = Math.max(y.hi, y0 + (z.length - 0.5) * dy);
        continue;
      }
      x.padded = y.padded = true;  // markers and bars get room at the edges, as in plotly
      const extend = (a, v) => {  // names make a category axis (e.g. a dot plot's genes × cell types)
        if (typeof v === "string") { if (!a.categories.includes(v)) a.categories.push(v); }
        else if (finite(v)) { a.lo = Math.min(a.lo, v); a.hi = Math.max(a.hi, v); }
      };
      (trace.x || []).forEach((v, i) => {
        if (!present(trace.y ? trace.y[i] : null)) return;
        extend(x, v); extend(y, trace.y[i]);
      });
      if (trace.type === "bar") { y.lo = Math.min(y.lo, 0); y.hi = Math.max(y.hi, 0); }
    }
    for (const a of Object.values(axes)) {
      const horizontal = a.name[0] === "x";
      const owner = a.overlaying ? axes[axisName(a.overlaying, a.name[0])] || a : a;
      const domain = owner.domain || [0, 1];
      a.from = horizontal ? box.left + domain[0] * box.width : box.top + (1 - domain[1]) * box.height;
      a.to = horizontal ? box.left + domain[1] * box.width : box.top + (1 - domain[0]) * box.height;
      if (a.categories.length) { a.range = [-0.5, a.categories.length - 0.5]; continue; }
      if (!a.range || !finite(a.range[0]) || !finite(a.range[1])) {
        const lo = finite(a.lo) ? a.lo : 0, hi = finite(a.hi) ? a.hi : 1;
        const pad = a.lo === a.hi ? 1 : a.padded ? 0.05 * (hi - lo) : 0;
        a.range = [lo - pad, hi + pad];
        if (a.autorange === "reversed") a.range = [a.range[1], a.range[0]];
      }
    }
    for (const a of Object.values(axes)) {  // square units: shrink the longer side of the panel, centred
      const other = a.scaleanchor && axes[axisName(a.scaleanchor, a.scaleanchor[0])];
      if (!other) continue;
      const unitsA = Math.abs(a.range[1] - a.range[0]), unitsO = Math.abs(other.range[1] - other.range[0]);
      const pxA = a.to - a.from, pxO = other.to - other.from, scale = Math.min(pxA / unitsA, pxO / unitsO);
      for (const [ax, units, px] of [[a, unitsA, pxA], [other, unitsO, pxO]]) {
        const mid = (ax.from + ax.to) / 2;
        ax.from = mid - (units * scale) / 2; ax.to = mid + (units * scale) / 2;
        if (px < units * scale) { ax.from = mid - px / 2; ax.to = mid + px / 2; }
      }
    }
    for (const a of Object.values(axes)) {
      const horizontal = a.name[0] === "x", [r0, r1] = a.range;
      a.px = (v) => {
        const value = a.categories.length && typeof v === "string" ? a.categories.indexOf(v) : v;
        const f = (value - r0) / (r1 - r0 || 1);
        return horizontal ? a.from + f * (a.to - a.from) : a.to - f * (a.to - a.from);
      };
      a.band = a.categories.length ? Math.abs(a.to - a.from) / a.categories.length : 0;
    }
    return axes;
  }

  function drawAxes(svg, axes) {
    for (const a of Object.values(axes)) {
      if (!a.used) continue;
      const horizontal = a.name[0] === "x", size = (a.tickfont && a.tickfont.size) || 10;
      const anchor = axes[axisName(a.anchor || (horizontal ? "y" : "x"), horizontal ? "y" : "x")];
      const right = a.side === "right";
      const edge = horizontal ? (anchor ? Math.max(anchor.from, anchor.to) : 0)
        : (anchor ? (right ? Math.max(anchor.from, anchor.to) : Math.min(anchor.from, anchor.to)) : 0);
      if (a.showticklabels !== false) {
        const every = a.categories.length ? Math.ceil((size + 2) / Math.max(a.band, 1)) : 1;  // no overprinting
        const ticks = a.categories.length ? a.categories.map((c, i) => [c, i]).filter((_, i) => i % every === 0)
          : niceTicks(a.range[0], a.range[1], 5).map((v) => [+v.toPrecision(6), v]);
        for (const [text, value] of ticks) {
          const p = a.px(value);
          if (horizontal) {
            const angle = a.tickangle || 0;
            label(svg, p, edge + 14, text, {"font-size": size, "text-anchor": angle ? "end" : "middle",
              transform: angle ? `rotate(${angle} ${p} ${edge + 8})` : ""});
          } else {
            label(svg, edge + (right ? 6 : -6), p + 4, text, {"font-size": size, "text-anchor": right ? "start" : "end"});
            if (!a.overlaying && a.showgrid !== false && anchor) {
              el("line", {x1: anchor.from, x2: anchor.to, y1: p, y2: p, stroke: "#e5e5e5"}, svg);
            }
          }
        }
      }
      const title = a.title && a.title.text;
      if (title && horizontal) {
        label(svg, (a.from + a.to) / 2, edge + 40 + a.room, title, {"text-anchor": "middle"});
      }
      if (title && !horizontal) {
        const x = edge + (right ? 1 : -1) * (a.room + 18), y = (a.from + a.to) / 2;
        label(svg, x, y, title, {"text-anchor": "middle", transform: `rotate(${right ? 90 : -90} ${x} ${y})`});
      }
    }
  }

  function hover(node, trace, i, fallback) {
    const text = pick(trace.hovertext, i, null) ?? pick(trace.customdata, i, null) ?? fallback;
    if (text !== null && text !== undefined) el("title", {}, node, lines(text).join("\n"));
  }

  function drawHeatmap(svg, trace, x, y) {
    const z = trace.z || [], dx = trace.dx || 1, dy = trace.dy || 1, x0 = trace.x0 || 0, y0 = trace.y0 || 0;
    const values = z.flat().filter(finite);
    const zmin = finite(trace.zmin) ? trace.zmin : Math.min(...values), zmax = finite(trace.zmax) ? trace.zmax : Math.max(...values);
    const scale = trace.colorscale || [[0, "#440154"], [1, "#fde725"]];
    z.forEach((row, r) => row.forEach((v, c) => {
      if (!finite(v)) return;
      const cx = x0 + c * dx, cy = y0 + r * dy;
      const left = Math.min(x.px(cx - dx / 2), x.px(cx + dx / 2)), top = Math.min(y.px(cy - dy / 2), y.px(cy + dy / 2));
      const cell = el("rect", {x: left, y: top, width: Math.abs(x.px(cx + dx / 2) - x.px(cx - dx / 2)) + 0.3,
        height: Math.abs(y.px(cy + dy / 2) - y.px(cy - dy / 2)) + 0.3,
        fill: colourAt(scale, (v - zmin) / ((zmax - zmin) || 1))}, svg);
      if (trace.hoverinfo !== "skip") {
        const name = trace.customdata && trace.customdata[r] ? trace.customdata[r][c] : "";
        el("title", {}, cell, lines(name).join("\n") + (name ? "\n" : "") + v);
      }
    }));
    if (trace.showscale !== false && trace.colorbar) {  // a horizontal bar under the panel, as in the figure
      const left = Math.min(x.from, x.to), width = Math.abs(x.to - x.from);
      const top = Math.max(y.from, y.to) + 16 + x.room - COLOURBAR_ROOM;  // x.room holds the bar's room
      const id = "g" + Math.random().toString(36).slice(2);
      const gradient = el("linearGradient", {id: id}, el("defs", {}, svg));
      scale.forEach(([t, c]) => el("stop", {offset: t, "stop-color": colourAt(scale, t)}, gradient));
      el("rect", {x: left, y: top, width: width, height: 8, fill: `url(#${id})`}, svg);
      label(svg, left, top + 20, String(+zmin.toPrecision(3)), {"font-size": 10});
      label(svg, left + width, top + 20, String(+zmax.toPrecision(3)), {"font-size": 10, "text-anchor": "end"});
      label(svg, left + width / 2, top + 20, (trace.colorbar.title && trace.colorbar.title.text) || "",
            {"font-size": 10, "text-anchor": "middle"});
    }
  }

  // slot: this trace's place among the bar traces drawn side by side (barmode "group") on its x axis
  function drawBars(svg, trace, x, y, slot) {
    const xs = trace.x || [], ys = trace.y || [], base = y.px(0), group = 0.8 * (x.band || 10);
    const width = group / slot.count, shift = -group / 2 + (slot.index + 0.5) * width;
    xs.forEach((v, i) => {
      const value = ys[i];
      if (!finite(value)) return;
      const p = x.px(v) + shift, top = y.px(value);
      const bar = el("rect", {x: p - width / 2, y: Math.min(top, base), width: width, height: Math.abs(base - top),
        fill: pick(trace.marker && trace.marker.color, i, trace._colour)}, svg);
      hover(bar, trace, i, `${v}: ${+value.toPrecision(4)}`);
      const text = pick(trace.text, i, "");
      if (text) label(svg, p, value >= 0 ? top - 4 : top + 12, text, {"font-size": 10, "text-anchor": "middle"});
    });
  }

  function drawScatter(svg, trace, x, y) {
    const mode = trace.mode || "markers", xs = trace.x || [], ys = trace.y || [], marker = trace.marker || {};
    const colours = markerColours(marker, xs.length, trace._colour);
    if (mode.includes("lines")) {
      let path = "", pen = false;
      xs.forEach((v, i) => {
        if (!present(ys[i]) || !present(v)) { pen = false; return; }
        path += (pen ? "L" : "M") + x.px(v) + " " + y.px(ys[i]) + " "; pen = true;
      });
      el("path", {d: path, fill: "none", stroke: (trace.line && trace.line.color) || trace._colour, "stroke-width": 2},
         svg);
    }
    xs.forEach((v, i) => {
      if (!present(ys[i]) || !present(v)) return;
      const px = x.px(v), py = y.px(ys[i]), size = pick(marker.size, i, mode.includes("lines") ? 6 : 8);
      if (mode.includes("markers")) {
        const colour = colours[i], outline = (marker.line && marker.line.color) || "none";
        const dot = marker.symbol === "square"
          ? el("rect", {x: px - size / 2, y: py - size / 2, width: size, height: size, fill: colour, stroke: outline}, svg)
          : el("circle", {cx: px, cy: py, r: size / 2, fill: colour, stroke: outline}, svg);
        hover(dot, trace, i, pick(trace.text, i, `${v}: ${ys[i]}`));
      }
      if (mode.includes("text")) {
        label(svg, px, py + 4, pick(trace.text, i, ""), {"font-size": (trace.textfont && trace.textfont.size) || 10,
          "text-anchor": "middle", fill: (trace.textfont && trace.textfont.color) || "#000", "pointer-events": "none"});
      }
    });
  }

  // One colour per point: numbers through the marker's colour scale (as plotly maps them), names as given.
  function markerColours(marker, count, fallback) {
    const given = marker.color, values = Array.isArray(given) ? given.filter(finite) : [];
    const scale = marker.colorscale || VIRIDIS;
    const lo = finite(marker.cmin) ? marker.cmin : Math.min(...values), hi = finite(marker.cmax) ? marker.cmax
      : Math.max(...values);
    return Array.from({length: count}, (_, i) => {
      const v = pick(given, i, fallback);
      if (finite(v)) return colourAt(scale, (v - lo) / ((hi - lo) || 1));
      return typeof v === "string" ? v : "#bbb";  // a point without a value (NaN) drawn grey
    });
  }

  // Bar traces sharing an x axis stand side by side under barmode "group" (plotly's default overlays them).
  function barSlots(fig) {
    const slots = new Map(), byAxis = {};
    for (const trace of fig.data.filter((t) => t.type === "bar")) {
      if (fig.layout.barmode !== "group") { slots.set(trace, {index: 0, count: 1}); continue; }
      (byAxis[trace.xaxis || "x"] || (byAxis[trace.xaxis || "x"] = [])).push(trace);
    }
    for (const traces of Object.values(byAxis)) {
      traces.forEach((trace, index) => slots.set(trace, {index: index, count: traces.length}));
    }
    return slots;
  }

  // Room for tick labels (plotly's automargin): a.room is the widest label across a y axis, the labels' depth
  // under an x axis (plus a colour bar drawn there); the margins grow to fit the outer ones.
  function measureRoom(fig, axes) {
    const need = {left: 0, right: 0, bottom: 0};
    for (const a of Object.values(axes)) {
      const texts = a.showticklabels === false ? [] : a.categories.length ? a.categories
        : niceTicks(a.range[0], a.range[1], 5).map((v) => String(+v.toPrecision(6)));
      const longest = Math.max(0, ...texts.map((text) => Math.max(...lines(text).map((line) => line.length))));
      if (a.name[0] === "x") {
        const angle = Math.abs(a.tickangle || 0) * Math.PI / 180;
        a.room = Math.min(220, longest * CHAR_PX * 0.85 * Math.sin(angle));
        if (fig.data.some((d) => d.type === "heatmap" && d.showscale !== false && d.colorbar
                          && axisName(d.xaxis || "x", "x") === a.name)) a.room += COLOURBAR_ROOM;
        need.bottom = Math.max(need.bottom, a.room + (a.title && a.title.text ? 10 : 0));
      } else {
        a.room = Math.min(260, longest * CHAR_PX + 8);
        const side = a.side === "right" ? "right" : "left";
        need[side] = Math.max(need[side], a.room + (a.title && a.title.text ? 30 : 6));
      }
    }
    return need;
  }

  function draw(svg, fig, width) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const layout = fig.layout, m = layout.margin || {}, t = m.t ?? 80;
    const plotHeight = (layout.height || 450) - t - (m.b ?? 80);
    const box = (left, right) => ({left: left, top: t, width: width - left - right, height: plotHeight});
    let l = m.l ?? 60, r = m.r ?? 30, axes = buildAxes(fig, box(l, r));
    const room = measureRoom(fig, axes);
    if (room.left > l || room.right > r) {
      l = Math.max(l, room.left); r = Math.max(r, room.right);
      axes = buildAxes(fig, box(l, r));
      measureRoom(fig, axes);
    }
    const height = t + plotHeight + BOTTOM_ROOM + room.bottom;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", height);
    drawAxes(svg, axes);
    const order = {heatmap: 0, bar: 1, scatter: 2}, slots = barSlots(fig);
    [...fig.data].sort((a, b) => order[a.type] - order[b.type]).forEach((trace) => {
      const x = axes[axisName(trace.xaxis || "x", "x")], y = axes[axisName(trace.yaxis || "y", "y")];
      if (trace.type === "heatmap") drawHeatmap(svg, trace, x, y);
      else if (trace.type === "bar") drawBars(svg, trace, x, y, slots.get(trace));
      else if (trace.type === "scatter") drawScatter(svg, trace, x, y);
    });
    for (const note of layout.annotations || []) {
      const x = l + (note.x ?? 0.5) * (width - l - r), y = t + (1 - (note.y ?? 1)) * plotHeight;
      const node = label(svg, x, y, note.text, {"text-anchor": {left: "start", right: "end"}[note.xanchor] || "middle",
        "font-size": (note.font && note.font.size) || 12});
      node.setAttribute("y", y - 6 - 14.4 * (lines(note.text).length - 1));
    }
    const title = layout.title && layout.title.text;
    if (title) label(svg, l, 24, title, {"font-size": 15, class: "figure-title"});
  }

  function render(root, fig) {
    const svg = el("svg", {width: "100%", role: "img", style: "font-family: sans-serif; display: block"});
    root.appendChild(svg);
    const frames = fig.frames || [], state = copy({data: fig.data, layout: fig.layout});
    const colorway = fig.layout.colorway || COLORWAY;
    state.data.forEach((trace, i) => { trace._colour = colorway[i % colorway.length]; });
    const width = () => Math.max(600, Math.min(root.clientWidth || 1000, 1600));
    const legend = document.createElement("div");
    legend.style.cssText = "font: 12px sans-serif; margin: 2px 0 6px 60px";
    for (const [i, trace] of fig.data.entries()) {
      if (trace.showlegend === false || !trace.name || !["bar", "scatter"].includes(trace.type)) continue;
      const swatch = document.createElement("span"), colour = pick(trace.marker && trace.marker.color, 0, null);
      swatch.style.cssText = "display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-2px;"
        + "background:" + ((trace.line && trace.line.color) || (typeof colour === "string" && colour)
                           || state.data[i]._colour);
      legend.append(swatch, lines(trace.name).join(" "));
    }
    root.appendChild(legend);
    let current = 0, timer = null;
    const show = (i) => {
      const frame = frames[i];
      if (frame) {
        (frame.traces || frame.data.map((_, j) => j)).forEach((index, j) => merge(state.data[index], frame.data[j] || {}));
        merge(state.layout, frame.layout || {});
      }
      current = i;
      root.dataset.current = String(i);
      draw(svg, state, width());
      if (slider) { slider.value = i; stepLabel.textContent = stepText(i, frame); }
    };
    let slider = null, stepLabel = null;
    const steps = (fig.layout.sliders || [])[0];  // the figure's own slider labels ("snapshot 12"), when it has them
    const stepText = (i, frame) => steps && steps.steps && steps.steps[i]
      ? ((steps.currentvalue && steps.currentvalue.prefix) || "") + steps.steps[i].label
      : "step " + (frame ? frame.name : i + 1);
    if (frames.length > 1) {
      const bar = document.createElement("div");
      bar.style.cssText = "display: flex; gap: 8px; align-items: center; font: 13px sans-serif; margin-left: 60px";
      const button = (text, action) => {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = text; b.addEventListener("click", action); bar.appendChild(b); return b;
      };
      const menu = (fig.layout.updatemenus || [])[0], play = menu && menu.buttons[0].args[1];
      const ms = (play && play.frame && play.frame.duration) || 800;
      const pause = () => { clearInterval(timer); timer = null; };
      button("▶ Play", () => {
        pause();
        if (current >= frames.length - 1) show(0);
        timer = setInterval(() => (current < frames.length - 1 ? show(current + 1) : pause()), ms);
      });
      button("❚❚ Pause", pause);
      slider = document.createElement("input");
      Object.assign(slider, {type: "range", min: 0, max: frames.length - 1, step: 1, value: 0});
      slider.style.flex = "1";
      slider.setAttribute("aria-label", "step");
      slider.addEventListener("input", () => { pause(); show(+slider.value); });
      stepLabel = document.createElement("span");
      bar.append(slider, stepLabel);
      root.appendChild(bar);
    }
    show(0);
    root.dataset.frames = String(frames.length);
  }

  window.seqattnLightFigure = window.seqattnLightFigure || {render: render};
})();
