// Charts as inline SVG, drawn at the width they are shown at (redrawn on resize, so text stays readable on a
// phone): a line/step/dot chart over numbered x (trials, epochs) and a horizontal bar chart.

import { formatValue, h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
const MARGIN = { left: 56, right: 14, top: 14, bottom: 42 };
let made = 0; // ids for aria-labelledby

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** Round tick positions covering [min, max]: about `count` steps of 1, 2, 2.5 or 5 times a power of ten. */
function ticks(min, max, count = 5, integer = false) {
  const counts = integer && min >= 0; // trial and epoch numbers: the axis starts at 0 at the lowest
  if (min === max) {
    const pad = integer ? 1 : Math.abs(min) * 0.1 || 0.5;
    [min, max] = [min - pad, max + pad];
  }
  const rough = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => (max - min) / s <= count) || rough;
  if (integer) step = Math.max(1, Math.round(step));
  const low = counts ? Math.max(0, Math.floor(min / step) * step) : Math.floor(min / step) * step;
  const high = Math.ceil(max / step) * step;
  const positions = [];
  for (let value = low; value <= high + step / 2; value += step) positions.push(Number(value.toPrecision(12)));
  return { low, high, positions };
}

function figure(title, caption, body) {
  const id = `chart-${++made}`;
  body.setAttribute('aria-labelledby', id);
  return h('figure', { class: 'chart' }, h('figcaption', { id }, title), body, caption);
}

/**
 * series: [{name, points: [[x, y], ...], style: 'line' | 'step' | 'dots', tone: 'main' | 'accent' | 'muted'}].
 * yDomain fixes the y axis (e.g. [0, 1] for scores); each point's tooltip says its x and y.
 */
export function lineChart({ title, xLabel, yLabel, series, width, height = 220, yDomain, emptyText }) {
  const points = series.flatMap((s) => s.points).filter(([, y]) => y !== null && Number.isFinite(y));
  if (!points.length) return figure(title, null, h('p', { class: 'chart-empty', role: 'img' }, emptyText));
  const xs = ticks(Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0])), 6, true);
  const ys = yDomain
    ? ticks(yDomain[0], yDomain[1], 4)
    : ticks(Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1])), 4);
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const x = (value) => MARGIN.left + ((value - xs.low) / (xs.high - xs.low)) * plotWidth;
  const y = (value) => MARGIN.top + (1 - (value - ys.low) / (ys.high - ys.low)) * plotHeight;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'plot' });
  for (const value of ys.positions) {
    chart.append(svg('line', { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(value), y2: y(value), class: 'grid' }));
    chart.append(svg('text', { x: MARGIN.left - 6, y: y(value) + 4, class: 'tick end' }, tickLabel(value)));
  }
  const every = Math.ceil(xs.positions.length / Math.max(2, Math.floor(plotWidth / 48)));
  xs.positions.forEach((value, index) => {
    if (index % every) return;
    chart.append(svg('text', { x: x(value), y: height - MARGIN.bottom + 16, class: 'tick middle' }, String(value)));
  });
  chart.append(svg('line', { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(ys.low), y2: y(ys.low), class: 'axis' }));
  chart.append(svg('text', { x: MARGIN.left + plotWidth / 2, y: height - 6, class: 'label middle' }, xLabel));
  const yTitle = svg('text', { x: 0, y: 0, class: 'label middle' }, yLabel);
  yTitle.setAttribute('transform', `translate(14 ${MARGIN.top + plotHeight / 2}) rotate(-90)`);
  chart.append(yTitle);
  for (const one of series) {
    const shown = one.points.filter(([, v]) => v !== null && Number.isFinite(v));
    if (one.style !== 'dots' && shown.length > 1) {
      const path = shown.map(([px, py], i) => {
        const step = one.style === 'step' && i > 0 ? `H${x(px)} ` : '';
        return `${i ? `${step}L` : 'M'}${x(px)} ${y(py)}`;
      });
      chart.append(svg('path', { d: path.join(' '), class: `series ${one.tone}` }));
    }
    if (one.style === 'dots' || shown.length <= 30) {
      for (const [px, py] of shown) {
        const dot = svg('circle', { cx: x(px), cy: y(py), r: one.style === 'dots' ? 4 : 3, class: `dot ${one.tone}` });
        dot.append(svg('title', {}, `${one.name || xLabel}: ${xLabel} ${px}, ${formatValue(py)}`));
        chart.append(dot);
      }
    }
  }
  chart.setAttribute('aria-description', summary(series));
  const legend = h(
    'ul',
    { class: 'legend' },
    series.filter((s) => s.name).map((s) => h('li', {}, h('span', { class: `swatch ${s.tone}` }), s.name)),
  );
  return figure(title, legend, chart);
}

function tickLabel(value) {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(1);
  return String(Number(value.toPrecision(6)));
}

function summary(series) {
  return series
    .filter((s) => s.name && s.points.length)
    .map((s) => `${s.name}: ${s.points.length} points, last ${formatValue(s.points.at(-1)[1])}`)
    .join('; ');
}

/** bars: [{label, value}] drawn left to right from 0, the largest value the longest bar. */
export function barChart({ title, bars, width, emptyText }) {
  if (!bars.length) return figure(title, null, h('p', { class: 'chart-empty', role: 'img' }, emptyText));
  const row = 24;
  const labelWidth = Math.min(200, Math.max(90, width * 0.42));
  const height = bars.length * row + 8;
  const top = Math.max(...bars.map((b) => b.value), 1e-12);
  const barSpace = width - labelWidth - 64;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'plot' });
  bars.forEach((bar, index) => {
    const middle = 4 + index * row + row / 2;
    const label = svg('text', { x: labelWidth - 6, y: middle + 4, class: 'tick end' }, clip(bar.label, labelWidth));
    label.append(svg('title', {}, bar.label));
    const length = Math.max(1, (bar.value / top) * barSpace);
    const rect = svg('rect', { x: labelWidth, y: middle - 8, width: length, height: 16, class: 'bar' });
    rect.append(svg('title', {}, `${bar.label}: ${formatValue(bar.value)}`));
    chart.append(label, rect);
    chart.append(svg('text', { x: labelWidth + length + 4, y: middle + 4, class: 'tick' }, formatValue(bar.value)));
  });
  chart.setAttribute('aria-description', bars.map((b) => `${b.label} ${formatValue(b.value)}`).join('; '));
  return figure(title, null, chart);
}

function clip(text, width) {
  const fits = Math.floor(width / 7);
  return text.length > fits ? `…${text.slice(text.length - fits + 1)}` : text;
}
