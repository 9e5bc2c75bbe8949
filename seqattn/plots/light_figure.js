// Light renderer for seqattn's plotly figures in exported notebooks (nbconvert HTML), offline and
// without plotly.js: bar (grouped, hatched, error bars), scatter (lines, markers, text, error bars) and
// heatmap (numbered or labelled cells, own or shared colour scale) traces on subplot grids (axis domains;
// linear, log or category axes), line shapes, annotations, hover text from plotly's hovertemplate, with
// frames, Play/Pause and a slider. seqattn.plots.export embeds it once per figure and calls
// render(root, figure); export._drawable refuses a figure that uses anything else. Drawn elements carry
// classes (trace groups with data-trace, bar, cell, point, error-bar, axis-title, annotation) that say
// what they are. Text is set with textContent only: names are user text. export.py embeds this file
// without comment lines and indentation: keep every string and template literal on one line.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const BOTTOM_ROOM = 40, COLOURBAR_ROOM = 34, CHAR_PX = 6, CAP_PX = 4, ERROR_COLOUR = "#444";
  // plotly's default colorway: a trace without its own colour gets the one JupyterLab shows it in
  const COLORWAY = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52"];
  const VIRIDIS = [[0, "#440154"], [0.5, "#21918c"], [1, "#fde725"]];
  const DASHES = {dot: "2 3", dash: "6 4", dashdot: "6 3 2 3", longdash: "10 4", longdashdot: "10 3 2 3"};

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
  const cellOf = (grid, r, c) => (Array.isArray(grid) && Array.isArray(grid[r]) ? grid[r][c] : undefined);

  // d3-format's fixed, percent and significant-digit forms (".2f", ".0%", ".3g"): what seqattn's figures use
  function formatNumber(v, spec) {
    const m = /^\.(\d+)([f%g])$/.exec(spec || "");
    if (!finite(v)) return v === null || v === undefined ? "" : String(v);
    if (!m) return String(+v.toPrecision(6));
    const digits = +m[1];
    return m[2] === "f" ? v.toFixed(digits) : m[2] === "%" ? (100 * v).toFixed(digits) + "%"
      : v.toPrecision(Math.max(digits, 1));
  }

  // plotly's hovertemplate: %{x}, %{y:.2f}, %{customdata[0]:.0%}, %{fullData.name}; <extra> text on its own line
  function fillTemplate(template, point, trace) {
    return template.replace(/%\{([\w.]+)(?:\[(\d+)\])?(?::([^}]*))?\}/g, (_, key, index, spec) => {
      let value = key === "fullData.name" ? trace.name : point[key];
      if (index !== undefined && Array.isArray(value)) value = value[+index];
      return formatNumber(value, spec);
    }).replace(/<extra>(.*?)<\/extra>/, (_, extra) => (extra ? "<br>" + extra : ""));
  }

  // A point's hover text (an SVG title): the trace's hovertemplate filled in, else hovertext, else fallback.
  function hover(node, trace, point, i, fallback) {
    if (trace.hoverinfo === "skip") return;
    const template = typeof trace.hovertemplate === "string" ? trace.hovertemplate : pick(trace.hovertemplate, i, null);
    const text = template ? fillTemplate(template, point, trace)
      : pick(trace.hovertext, i, null) ?? pick(trace.customdata, i, null) ?? fallback;
    if (text !== null && text !== undefined) el("title", {}, node, lines(text).join("\n"));
  }

  const pointOf = (trace, i) => ({x: pick(trace.x, i), y: pick(trace.y, i), text: pick(trace.text, i),
    customdata: pick(trace.customdata, i), hovertext: pick(trace.hovertext, i)});

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

  // Ticks of a log axis (range in powers of ten, as plotly gives it): 1, 2, 5 per decade over a short range
  function logTicks(lo, hi) {
    const steps = hi - lo < 3 ? [1, 2, 5] : [1], ticks = [];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const m of steps) {
        const c = k + Math.log10(m);
        if (c >= lo - 1e-9 && c <= hi + 1e-9) ticks.push(c);
      }
    }
    return ticks;
  }

  const axisName = (ref, letter) => letter + "axis" + (ref && ref.length > 1 ? ref.slice(1) : "");
  const lowEdge = (a) => a.at(Math.min(a.range[0], a.range[1]));  // where a bar stands on a log axis
  // a pixel position clipped to the panel (plotly clips bars and whiskers at the axis range)
  const clamp = (a, p) => Math.min(Math.max(p, Math.min(a.from, a.to)), Math.max(a.from, a.to));

  // A heatmap's column and row coordinates: its labels (category names) or x0 + i·dx, and the cell size.
  function heatmapGrid(trace) {
    const z = trace.z || [], cols = Math.max(0, ...z.map((row) => row.length));
    const along = (labels, n, start, step) => labels
      || Array.from({length: n}, (_, i) => (start || 0) + i * (step || 1));
    return {xs: along(trace.x, cols, trace.x0, trace.dx), ys: along(trace.y, z.length, trace.y0, trace.dy),
      dx: trace.x ? 1 : trace.dx || 1, dy: trace.y ? 1 : trace.dy || 1};
  }

  // An error bar of type "data" at point i: [below, above]; symmetric unless arrayminus is given (plotly's rule)
  function errorSpan(error, i) {
    if (!error || error.visible === false) return null;
    const up = pick(error.array, i, null), symmetric = error.symmetric ?? !("arrayminus" in error);
    const down = symmetric ? up : pick(error.arrayminus, i, null);
    return finite(up) || finite(down) ? [finite(down) ? down : 0, finite(up) ? up : 0] : null;
  }

  // Axes: category, linear or log; their data range (error bars included); their pixel extent (domain;
  // scaleanchor shrinks a panel to square units). a.coord maps a value to range units, a.at those to pixels.
  function buildAxes(fig, box) {
    const axes = {};
    const axis = (name) => {
      if (axes[name]) return axes[name];
      const a = axes[name] = Object.assign({name: name, lo: Infinity, hi: -Infinity}, fig.layout[name] || {});
      a.categories = a.categoryorder === "array" && Array.isArray(a.categoryarray) ? a.categoryarray.map(String) : [];
      a.log = a.type === "log";
      a.coord = (v) => (typeof v === "string" && a.categories.length ? a.categories.indexOf(v)
        : a.log ? Math.log10(v) : v);
      return a;
    };
    const extend = (a, v, below, above) => {  // names make a category axis (e.g. a dot plot's genes × cell types)
      if (typeof v === "string") { if (!a.categories.includes(v)) a.categories.push(v); return; }
      for (const end of [v - below, v + above]) {
        const c = a.coord(end);
        if (finite(c)) { a.lo = Math.min(a.lo, c); a.hi = Math.max(a.hi, c); }
      }
    };
    for (const trace of fig.data) {
      const x = axis(axisName(trace.xaxis || "x", "x")), y = axis(axisName(trace.yaxis || "y", "y"));
      x.used = y.used = true;
      if (trace.type === "heatmap") {
        const grid = heatmapGrid(trace);
        grid.xs.forEach((v) => extend(x, v, grid.dx / 2, grid.dx / 2));
        grid.ys.forEach((v) => extend(y, v, grid.dy / 2, grid.dy / 2));
        continue;
      }
      x.padded = y.padded = true;  // markers and bars get room at the edges, as in plotly
      (trace.x || []).forEach((v, i) => {
        if (!present(trace.y ? trace.y[i] : null) || !present(v)) return;
        const [xDown, xUp] = errorSpan(trace.error_x, i) || [0, 0];
        const [yDown, yUp] = errorSpan(trace.error_y, i) || [0, 0];
        extend(x, v, xDown, xUp); extend(y, trace.y[i], yDown, yUp);
      });
      if (trace.type === "bar" && !y.log) { y.lo = Math.min(y.lo, 0); y.hi = Math.max(y.hi, 0); }
    }
    for (const shape of fig.layout.shapes || []) {  // a line at a data value is in view (plotly's autorange)
      for (const letter of ["x", "y"]) {
        const ref = shape[letter + "ref"] || "paper", a = axes[axisName(ref, letter)];
        if (!a || ref === "paper" || ref.endsWith(" domain")) continue;
        [shape[letter + "0"], shape[letter + "1"]].forEach((v) => extend(a, v, 0, 0));
      }
    }
    for (const a of Object.values(axes)) {
      const horizontal = a.name[0] === "x";
      const owner = a.overlaying ? axes[axisName(a.overlaying, a.name[0])] || a : a;
      const domain = owner.domain || [0, 1];
      a.from = horizontal ? box.left + domain[0] * box.width : box.top + (1 - domain[1]) * box.height;
      a.to = horizontal ? box.left + domain[1] * box.width : box.top + (1 - domain[0]) * box.height;
      if (Array.isArray(a.range) && finite(a.range[0]) && finite(a.range[1])) continue;  // the figure's own range
      if (a.categories.length) {
        a.range = [-0.5, a.categories.length - 0.5];
      } else {
        const lo = finite(a.lo) ? a.lo : 0, hi = finite(a.hi) ? a.hi : 1;
        const pad = a.lo === a.hi ? 1 : a.padded ? 0.05 * (hi - lo) : 0;
        a.range = [lo - pad, hi + pad];
      }
      if (a.autorange === "reversed") a.range = [a.range[1], a.range[0]];
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
      a.at = (c) => {
        const f = (c - r0) / (r1 - r0 || 1);
        return horizontal ? a.from + f * (a.to - a.from) : a.to - f * (a.to - a.from);
      };
      a.px = (v) => a.at(a.coord(v));
      a.band = a.categories.length ? Math.abs(a.to - a.from) / a.categories.length : 0;
    }
    return axes;
  }

  // [label, coordinate] of an axis's ticks: the categories that fit without overprinting, or round numbers
  // (1-2-5 per decade on a log axis), written with the axis's tickformat.
  function ticks(a) {
    if (a.showticklabels === false) return [];
    if (a.categories.length) {
      const size = (a.tickfont && a.tickfont.size) || 10;
      const every = Math.ceil((size + 2) / Math.max(a.band, 1));
      return a.categories.map((c, i) => [c, i]).filter((_, i) => i % every === 0);
    }
    const [lo, hi] = [Math.min(...a.range), Math.max(...a.range)];
    const count = Math.min(Math.max(Math.abs(a.to - a.from) / (a.name[0] === "x" ? 80 : 40), 4), 9);  // plotly's
    return (a.log ? logTicks(lo, hi) : niceTicks(lo, hi, count))
      .map((c) => [formatNumber(a.log ? Math.pow(10, c) : c, a.tickformat), c]);
  }

  function drawAxes(svg, axes) {
    for (const a of Object.values(axes)) {
      if (!a.used) continue;
      const g = el("g", {class: "axis", "data-axis": a.name}, svg);
      const horizontal = a.name[0] === "x", size = (a.tickfont && a.tickfont.size) || 10;
      const anchor = axes[axisName(a.anchor || (horizontal ? "y" : "x"), horizontal ? "y" : "x")];
      const right = a.side === "right";
      const edge = horizontal ? (anchor ? Math.max(anchor.from, anchor.to) : 0)
        : (anchor ? (right ? Math.max(anchor.from, anchor.to) : Math.min(anchor.from, anchor.to)) : 0);
      for (const [text, value] of ticks(a)) {
        const p = a.at(value);
        if (horizontal) {
          const angle = a.tickangle || 0;
          label(g, p, edge + 14, text, {"font-size": size, "text-anchor": angle ? "end" : "middle",
            transform: angle ? `rotate(${angle} ${p} ${edge + 8})` : ""});
        } else {
          label(g, edge + (right ? 6 : -6), p + 4, text, {"font-size": size, "text-anchor": right ? "start" : "end"});
          if (!a.overlaying && a.showgrid !== false && anchor) {
            el("line", {x1: anchor.from, x2: anchor.to, y1: p, y2: p, stroke: "#e5e5e5"}, g);
          }
        }
      }
      const title = a.title && a.title.text;
      if (title && horizontal) {
        label(g, (a.from + a.to) / 2, edge + 40 + a.room, title, {"text-anchor": "middle", class: "axis-title"});
      }
      if (title && !horizontal) {
        const x = edge + (right ? 1 : -1) * (a.room + 18), y = (a.from + a.to) / 2;
        label(g, x, y, title, {"text-anchor": "middle", class: "axis-title",
          transform: `rotate(${right ? 90 : -90} ${x} ${y})`});
      }
    }
  }

  // A heatmap's colour scale and range: its own, or the colour axis it shares with other panels (one scale).
  function colouring(fig, trace) {
    const shared = trace.coloraxis ? fig.layout[trace.coloraxis] || {} : null;
    const own = shared ? {scale: shared.colorscale, lo: shared.cmin, hi: shared.cmax, bar: shared.colorbar || {},
      shown: shared.showscale !== false} : {scale: trace.colorscale, lo: trace.zmin, hi: trace.zmax,
      bar: trace.colorbar, shown: trace.showscale !== false};
    const members = shared ? fig.data.filter((t) => t.coloraxis === trace.coloraxis) : [trace];
    const values = members.flatMap((t) => (t.z || []).flat().filter(finite));
    return {scale: own.scale || VIRIDIS, lo: finite(own.lo) ? own.lo : Math.min(...values),
      hi: finite(own.hi) ? own.hi : Math.max(...values), bar: own.bar,
      // a shared scale is drawn once, under the last panel that uses it
      drawn: own.shown && !!own.bar && members[members.length - 1] === trace};
  }

  function drawHeatmap(g, fig, trace, x, y) {
    const grid = heatmapGrid(trace), colours = colouring(fig, trace);
    const gapX = trace.xgap || 0, gapY = trace.ygap || 0, seam = gapX || gapY ? 0 : 0.3;  // seam: no hairlines
    const edges = (a, v, d) => { const c = a.coord(v), half = typeof v === "string" ? 0.5 : a.coord(v + d / 2) - c;
      const p = [a.at(c - half), a.at(c + half)]; return [Math.min(...p), Math.abs(p[1] - p[0])]; };
    (trace.z || []).forEach((row, r) => row.forEach((v, c) => {
      if (!finite(v)) return;
      const [left, width] = edges(x, grid.xs[c], grid.dx), [top, height] = edges(y, grid.ys[r], grid.dy);
      const cell = el("rect", {class: "cell", "shape-rendering": "crispEdges", x: left + gapX / 2, y: top + gapY / 2,
        width: Math.max(width - gapX + seam, 0), height: Math.max(height - gapY + seam, 0),
        fill: colourAt(colours.scale, (v - colours.lo) / ((colours.hi - colours.lo) || 1))}, g);
      const point = {x: grid.xs[c], y: grid.ys[r], z: v, text: cellOf(trace.text, r, c),
        customdata: cellOf(trace.customdata, r, c)};
      const name = point.customdata ? lines(point.customdata).join("\n") + "\n" : "";
      hover(cell, trace, point, null, name + v);
    }));
    if (colours.drawn) drawColourBar(g, colours, x, y);
  }

  // A horizontal colour bar under the panel (x.room holds the bar's room), as seqattn's figures place it.
  function drawColourBar(g, colours, x, y) {
    const left = Math.min(x.from, x.to), width = Math.abs(x.to - x.from);
    const top = Math.max(y.from, y.to) + 16 + x.room - COLOURBAR_ROOM;
    const id = "g" + Math.random().toString(36).slice(2);
    const gradient = el("linearGradient", {id: id}, el("defs", {}, g));
    colours.scale.forEach(([t]) => el("stop", {offset: t, "stop-color": colourAt(colours.scale, t)}, gradient));
    el("rect", {class: "colour-bar", x: left, y: top, width: width, height: 8, fill: `url(#${id})`}, g);
    label(g, left, top + 20, String(+colours.lo.toPrecision(3)), {"font-size": 10});
    label(g, left + width, top + 20, String(+colours.hi.toPrecision(3)), {"font-size": 10, "text-anchor": "end"});
    label(g, left + width / 2, top + 20, (colours.bar.title && colours.bar.title.text) || "",
          {"font-size": 10, "text-anchor": "middle"});
  }

  // plotly's bar patterns ("/", "x", …) as diagonal hatching over the bar's colour, in a contrasting colour
  function hatch(g, colour) {
    const id = "p" + Math.random().toString(36).slice(2), [r, gr, b] = rgb(colour);
    const pattern = el("pattern", {id: id, width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)"}, el("defs", {}, g));
    el("path", {d: "M0 0H6V6H0Z", fill: colour}, pattern);
    el("path", {d: "M0 0V6", stroke: 0.299 * r + 0.587 * gr + 0.114 * b > 150 ? "#444" : "#fff", "stroke-width": 2},
       pattern);
    return `url(#${id})`;
  }

  // A whisker with caps from value − span[0] to value + span[1] along axis, at pixel `at` across it.
  function drawWhisker(g, axis, value, span, at, colour) {
    const end = (v) => clamp(axis, axis.log && v <= 0 ? lowEdge(axis) : axis.px(v));
    const a = end(value - span[0]), b = end(value + span[1]), w = CAP_PX;
    const d = axis.name[0] === "x" ? `M${a} ${at}H${b}M${a} ${at - w}V${at + w}M${b} ${at - w}V${at + w}`
      : `M${at} ${a}V${b}M${at - w} ${a}H${at + w}M${at - w} ${b}H${at + w}`;
    el("path", {class: "error-bar", d: d, stroke: colour, "stroke-width": 1.5, fill: "none"}, g);
  }

  // A trace's error bars at point i (pixel px, py), in plotly's default colours: a bar's outline colour or dark
  // grey; a scatter trace's line or marker colour.
  function drawErrors(g, trace, i, x, y, px, py) {
    const marker = trace.marker || {}, own = typeof marker.color === "string" ? marker.color : null;
    const colour = trace.type === "bar" ? (marker.line && marker.line.color) || ERROR_COLOUR
      : (trace.line && trace.line.color) || own || trace._colour;
    for (const [error, axis, value, at] of [[trace.error_x, x, trace.x[i], py], [trace.error_y, y, trace.y[i], px]]) {
      const span = errorSpan(error, i);
      if (span && finite(value)) drawWhisker(g, axis, value, span, at, error.color || colour);
    }
  }

  // slot: this trace's place among the offset groups drawn side by side at each x (see groupSlots)
  const slotShift = (x, slot) => {
    const group = 0.8 * (x.band || 10), width = group / slot.count;
    return {width: width, shift: -group / 2 + (slot.index + 0.5) * width};
  };

  function drawBars(g, trace, x, y, slot) {
    const xs = trace.x || [], ys = trace.y || [], base = y.log ? lowEdge(y) : y.px(0);
    const {width, shift} = slotShift(x, slot);
    const patterns = (trace.marker && trace.marker.pattern) || {};
    xs.forEach((v, i) => {
      const value = ys[i];
      if (!finite(value) || !present(v) || (y.log && value <= 0)) return;
      const p = x.px(v) + shift, top = clamp(y, y.px(value));
      const colour = pick(trace.marker && trace.marker.color, i, trace._colour);
      const bar = el("rect", {class: "bar", x: p - width / 2, y: Math.min(top, base), width: width,
        height: Math.abs(base - top), fill: pick(patterns.shape, i, "") ? hatch(g, colour) : colour}, g);
      hover(bar, trace, pointOf(trace, i), i, `${v}: ${+value.toPrecision(4)}`);
      drawErrors(g, trace, i, x, y, p, top);
      const text = pick(trace.text, i, "");
      if (text) label(g, p, value >= 0 ? top - 4 : top + 12, text, {"font-size": 10, "text-anchor": "middle"});
    });
  }

  function drawMarker(g, symbol, px, py, size, colour, outline) {
    const square = {x: px - size / 2, y: py - size / 2, width: size, height: size, fill: colour, stroke: outline};
    if (symbol === "square") return el("rect", Object.assign({class: "point"}, square), g);
    if (symbol === "diamond") {
      return el("rect", Object.assign({class: "point", transform: `rotate(45 ${px} ${py})`}, square, {
        x: px - size / 2.8, y: py - size / 2.8, width: size / 1.4, height: size / 1.4}), g);
    }
    return el("circle", {class: "point", cx: px, cy: py, r: size / 2, fill: colour, stroke: outline}, g);
  }

  function drawScatter(g, trace, x, y, slot) {
    const mode = trace.mode || "markers", xs = trace.x || [], ys = trace.y || [], marker = trace.marker || {};
    const colours = markerColours(marker, xs.length, trace._colour), line = trace.line || {};
    const shift = slot ? slotShift(x, slot).shift : 0, drawn = (i) => present(xs[i]) && present(ys[i]);
    if (mode.includes("lines")) {
      let path = "", pen = false;
      xs.forEach((v, i) => {
        if (!drawn(i)) { pen = false; return; }
        path += (pen ? "L" : "M") + (x.px(v) + shift) + " " + y.px(ys[i]) + " "; pen = true;
      });
      const own = typeof marker.color === "string" ? marker.color : null;  // plotly: lines take the marker's colour
      el("path", {class: "line", d: path, fill: "none", stroke: line.color || own || trace._colour,
        "stroke-width": line.width ?? 2, "stroke-dasharray": DASHES[line.dash] || ""}, g);
    }
    xs.forEach((v, i) => {
      if (!drawn(i)) return;
      const px = x.px(v) + shift, py = y.px(ys[i]);
      const size = mode.includes("markers") ? pick(marker.size, i, mode.includes("lines") ? 6 : 8) : 0;
      drawErrors(g, trace, i, x, y, px, py);
      if (mode.includes("markers")) {
        const outline = (marker.line && marker.line.color) || "none";
        const dot = drawMarker(g, marker.symbol, px, py, size, colours[i], outline);
        hover(dot, trace, pointOf(trace, i), i, pick(trace.text, i, `${v}: ${ys[i]}`));
      }
      if (mode.includes("text")) drawPointText(g, trace, i, px, py, size);
    });
  }

  // A point's text at its textposition: "top …" stands above the marker (lines stacked upwards), "bottom …" below.
  function drawPointText(g, trace, i, px, py, size) {
    const text = pick(trace.text, i, ""), font = (trace.textfont && trace.textfont.size) || 10;
    const [vertical, horizontal] = String(pick(trace.textposition, i, "middle center")).split(" ");
    const count = lines(text).length;
    const y = vertical === "top" ? py - size / 2 - 4 - 1.2 * font * (count - 1)
      : vertical === "bottom" ? py + size / 2 + font + 2 : py + 4 - 0.6 * font * (count - 1);
    const x = px + ({left: -1, right: 1}[horizontal] || 0) * (size / 2 + 2);
    label(g, x, y, text, {class: "point-text", "font-size": font, "pointer-events": "none",
      "text-anchor": {left: "end", right: "start"}[horizontal] || "middle",
      fill: (trace.textfont && trace.textfont.color) || "#000"});
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

  // Side by side at each x (barmode "group"; scattermode "group" for text and markers): one slot per offset
  // group on an x axis, in order of first appearance; a trace without offsetgroup is a group of its own, so a
  // bar's label trace with the bar's offsetgroup stands over that bar. Other bars overlay (plotly's default).
  function groupSlots(fig) {
    const groups = {}, keys = new Map();
    for (const trace of fig.data) {
      const grouped = trace.type === "bar" ? fig.layout.barmode === "group"
        : trace.type === "scatter" && fig.layout.scattermode === "group";
      if (!grouped) continue;
      const axis = trace.xaxis || "x", key = trace.offsetgroup ?? trace, names = groups[axis] || (groups[axis] = []);
      if (!names.includes(key)) names.push(key);
      keys.set(trace, [axis, key]);
    }
    return (trace) => {
      if (!keys.has(trace)) return trace.type === "bar" ? {index: 0, count: 1} : null;
      const [axis, key] = keys.get(trace);
      return {index: groups[axis].indexOf(key), count: groups[axis].length};
    };
  }

  // Room for tick labels (plotly's automargin): a.room is the widest label across a y axis, the labels' depth
  // under an x axis (plus a colour bar drawn there); the margins grow to fit the outer ones.
  function measureRoom(fig, axes) {
    const need = {left: 0, right: 0, bottom: 0};
    for (const a of Object.values(axes)) {
      const texts = ticks(a).map(([text]) => String(text));
      const longest = Math.max(0, ...texts.map((text) => Math.max(...lines(text).map((line) => line.length))));
      if (a.name[0] === "x") {
        const angle = Math.abs(a.tickangle || 0) * Math.PI / 180;
        a.room = Math.min(220, longest * CHAR_PX * 0.85 * Math.sin(angle));
        if (fig.data.some((d) => d.type === "heatmap" && axisName(d.xaxis || "x", "x") === a.name
                          && colouring(fig, d).drawn)) a.room += COLOURBAR_ROOM;
        need.bottom = Math.max(need.bottom, a.room + (a.title && a.title.text ? 10 : 0));
      } else {
        a.room = Math.min(260, longest * CHAR_PX + 8);
        const side = a.side === "right" ? "right" : "left";
        need[side] = Math.max(need[side], a.room + (a.title && a.title.text ? 30 : 6));
      }
    }
    return need;
  }

  // A position in plotly's references: "paper" (the plot area), an axis ("x2": data) or its domain ("x2 domain").
  function place(axes, area, ref, value, letter) {
    const [name, domain] = (ref || "paper").split(" ");
    if (name === "paper") return letter === "x" ? area.left + value * area.width : area.top + (1 - value) * area.height;
    const a = axes[axisName(name, letter)];
    if (!a) return NaN;
    if (!domain) return a.px(value);
    return letter === "x" ? a.from + value * (a.to - a.from) : a.to - value * (a.to - a.from);
  }

  // Line shapes (add_hline, add_vline), over the traces as in plotly.
  function drawShapes(svg, fig, axes, area) {
    for (const shape of fig.layout.shapes || []) {
      const line = shape.line || {}, at = (ref, v, letter) => place(axes, area, ref, v, letter);
      const ends = [at(shape.xref, shape.x0, "x"), at(shape.xref, shape.x1, "x"), at(shape.yref, shape.y0, "y"),
        at(shape.yref, shape.y1, "y")];
      if (shape.type !== "line" || !ends.every(finite)) continue;
      el("line", {class: "shape", x1: ends[0], x2: ends[1], y1: ends[2], y2: ends[3], stroke: line.color || "#444",
        "stroke-width": line.width ?? 2, "stroke-dasharray": DASHES[line.dash] || ""}, svg);
    }
  }

  // Annotations (subplot titles, a line's label): yanchor "top" hangs the text under its point, "middle" centres
  // it, otherwise it stands above (subplot titles sit on their panel).
  function drawAnnotations(svg, fig, axes, area) {
    for (const note of fig.layout.annotations || []) {
      const x = place(axes, area, note.xref, note.x ?? 0.5, "x"), y = place(axes, area, note.yref, note.y ?? 0.5, "y");
      if (!finite(x) || !finite(y)) continue;
      const size = (note.font && note.font.size) || 12, extra = 1.2 * size * (lines(note.text).length - 1);
      const baseline = {top: y + size + 2, middle: y + 0.35 * size - extra / 2}[note.yanchor] ?? y - 6 - extra;
      label(svg, x, baseline, note.text, {class: "annotation", "font-size": size,
        "text-anchor": {left: "start", right: "end"}[note.xanchor] || "middle"});
    }
  }

  // The figure title: plotly's <br> lines, the <sup> ones smaller; one text element (tests read it whole).
  function drawTitle(svg, text, left) {
    const node = el("text", {x: left, y: 24, "font-size": 15, class: "figure-title"}, svg);
    let inSup = false;
    String(text).split(/<br\s*\/?>/i).forEach((part, i) => {
      const small = inSup || /<sup>/i.test(part);
      inSup = small && !/<\/sup>/i.test(part);
      el("tspan", {x: left, dy: i ? (small ? 15 : 18) : 0, "font-size": small ? 12 : 15}, node, lines(part)[0]);
    });
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
    const order = {heatmap: 0, bar: 1, scatter: 2}, slotOf = groupSlots(fig);
    const traces = fig.data.map((trace, index) => [trace, index]);
    traces.sort(([a], [b]) => order[a.type] - order[b.type]).forEach(([trace, index]) => {
      const x = axes[axisName(trace.xaxis || "x", "x")], y = axes[axisName(trace.yaxis || "y", "y")];
      const g = el("g", {class: "trace", "data-trace": index, "data-type": trace.type}, svg);
      if (trace.type === "heatmap") drawHeatmap(g, fig, trace, x, y);
      else if (trace.type === "bar") drawBars(g, trace, x, y, slotOf(trace));
      else if (trace.type === "scatter") drawScatter(g, trace, x, y, slotOf(trace));
    });
    drawShapes(svg, fig, axes, box(l, r));
    drawAnnotations(svg, fig, axes, box(l, r));
    const title = layout.title && layout.title.text;
    if (title) drawTitle(svg, title, l);
  }

  // The legend above the plot: one swatch per named bar or scatter trace (plotly's showlegend respected).
  function drawLegend(root, fig, state) {
    const legend = document.createElement("div");
    legend.className = "legend";
    legend.style.cssText = "font: 12px sans-serif; margin: 2px 0 6px 60px";
    for (const [i, trace] of fig.data.entries()) {
      if (fig.layout.showlegend === false || trace.showlegend === false || !trace.name
          || !["bar", "scatter"].includes(trace.type)) continue;
      const item = document.createElement("span"), swatch = document.createElement("span");
      const colour = pick(trace.marker && trace.marker.color, 0, null);
      item.className = "legend-item";
      item.style.cssText = "display: inline-block; white-space: nowrap";
      swatch.style.cssText = "display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-2px;"
        + "background:" + ((trace.line && trace.line.color) || (typeof colour === "string" && colour)
                           || state.data[i]._colour);
      item.append(swatch, lines(trace.name).join(" "));
      legend.appendChild(item);
    }
    root.appendChild(legend);
  }

  function render(root, fig) {
    const svg = el("svg", {width: "100%", role: "img", style: "font-family: sans-serif; display: block"});
    root.appendChild(svg);
    const frames = fig.frames || [], state = copy({data: fig.data, layout: fig.layout});
    const colorway = fig.layout.colorway || COLORWAY;
    state.data.forEach((trace, i) => { trace._colour = colorway[i % colorway.length]; });
    const width = () => Math.max(600, Math.min(root.clientWidth || 1000, 1600));
    drawLegend(root, fig, state);
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
