// A small line-chart drawer: series of [x, y] points into an <svg>, with axes and a legend.
"use strict";
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"];
const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function formatNumber(value) {
  const size = Math.abs(value);
  if (size >= 1e4) return value.toExponential(1);
  if (size >= 100 || value === 0) return value.toFixed(0);
  return value.toPrecision(2);
}

// series: [{name, points: [[x, y], ...]}]; draws every series on shared axes.
function drawLineChart(svg, legend, series, xLabel) {
  const width = +svg.getAttribute("width"), height = +svg.getAttribute("height");
  const margin = {left: 44, right: 10, top: 10, bottom: 30};
  svg.replaceChildren();
  legend.replaceChildren();
  const all = series.flatMap(s => s.points);
  svg.dataset.points = String(all.length);
  svg.dataset.series = String(series.filter(s => s.points.length).length);
  if (!all.length) {
    svg.appendChild(svgElement("text", {x: width / 2 - 30, y: height / 2})).textContent = "no data yet";
    return;
  }
  const xs = all.map(p => p[0]), ys = all.map(p => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = x => margin.left + (x - x0) / (x1 - x0) * (width - margin.left - margin.right);
  const sy = y => height - margin.bottom - (y - y0) / (y1 - y0) * (height - margin.top - margin.bottom);
  svg.appendChild(svgElement("line", {x1: margin.left, y1: height - margin.bottom, x2: width - margin.right, y2: height - margin.bottom, stroke: "#999"}));
  svg.appendChild(svgElement("line", {x1: margin.left, y1: margin.top, x2: margin.left, y2: height - margin.bottom, stroke: "#999"}));
  for (const [value, x, y, anchor] of [[y1, margin.left - 4, margin.top + 8, "end"], [y0, margin.left - 4, height - margin.bottom, "end"],
                                       [x0, margin.left, height - margin.bottom + 14, "start"], [x1, width - margin.right, height - margin.bottom + 14, "end"]]) {
    svg.appendChild(svgElement("text", {x, y, "text-anchor": anchor})).textContent = formatNumber(value);
  }
  svg.appendChild(svgElement("text", {x: width / 2, y: height - 4, "text-anchor": "middle"})).textContent = xLabel;
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const colour = COLOURS[i % COLOURS.length];
    const path = s.points.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    svg.appendChild(svgElement("polyline", {points: path, fill: "none", stroke: colour, "stroke-width": 1.5, class: "series"}));
    if (s.points.length === 1) {
      svg.appendChild(svgElement("circle", {cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 3, fill: colour}));
    }
    const item = document.createElement("span");
    item.style.color = colour;
    item.textContent = "● " + s.name;
    legend.appendChild(item);
  });
}
